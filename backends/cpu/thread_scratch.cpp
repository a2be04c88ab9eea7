#include "thread_scratch.h"

#include <cstdlib>
#include <new>

namespace moe_cpu {
namespace {

struct Buffer {
  void* data = nullptr;
  size_t bytes = 0;
  ~Buffer() { std::free(data); }
};

thread_local Buffer t_buffers[static_cast<size_t>(ScratchSlot::kCount)];

}  // namespace

void* thread_scratch(ScratchSlot slot, size_t bytes) {
  Buffer& b = t_buffers[static_cast<size_t>(slot)];
  if (b.bytes >= bytes && b.data) return b.data;
  // Grow by at least half again, so that slowly growing requests do not reallocate every time.
  size_t want = bytes + bytes / 2;
  want = (want + 63) / 64 * 64;
  if (want < bytes) throw std::bad_alloc();
  void* p = std::aligned_alloc(64, want ? want : 64);
  if (!p) throw std::bad_alloc();
  std::free(b.data);
  b.data = p;
  b.bytes = want;
  return p;
}

}  // namespace moe_cpu
