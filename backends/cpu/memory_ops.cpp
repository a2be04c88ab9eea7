// Host memory: 64-byte aligned blocks (whole cache lines, full-width vector loads); copies and
// clears of large blocks are split over the backend's threads, which roughly doubles the bandwidth
// one core reaches.
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

constexpr size_t kAlignment = 64;
// Below this a single memcpy beats waking a thread team.
constexpr int64_t kParallelBytes = 1 << 20;

void check_copy(moe_backend* be, const void* dst, const void* src, size_t bytes) {
  backend_of(be);
  if (bytes == 0) return;
  check_pointer(dst, "dst");
  check_pointer(src, "src");
}

void copy_bytes(const moe_backend& be, void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const char*>(src);
  // Overlapping ranges cannot be split; memmove handles them in one piece.
  if ((d < s + bytes && s < d + bytes) || static_cast<int64_t>(bytes) < kParallelBytes) {
    std::memmove(d, s, bytes);
    return;
  }
  parallel_ranges(be, static_cast<int64_t>(bytes), kParallelBytes / 2, kAlignment,
                  [&](int64_t begin, int64_t end) { std::memcpy(d + begin, s + begin, end - begin); });
}

}  // namespace

moe_status cpu_alloc(moe_backend* be, size_t bytes, void** out) {
  return guarded([&] {
    backend_of(be);
    check_pointer(out, "out");
    *out = nullptr;
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    if (rounded < bytes) fail(MOE_ERR_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes");
    // aligned_alloc(0) may return null; a zero-byte tensor still gets a distinct block.
    *out = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
    if (!*out) fail(MOE_ERR_OUT_OF_MEMORY, "could not allocate " + std::to_string(bytes) + " bytes of host memory");
  });
}

void cpu_free(moe_backend*, void* ptr) { std::free(ptr); }

// Copies that cross to the host are refused while the calling thread records (the ABI: nothing crosses
// to the host while recording); those that wait report a failed replay first.
static void check_not_recording(moe_backend* be, const char* op) {
  if (backend_of(be).recorder.recording_here())
    invalid(std::string(op) + " while recording a step (copy inputs in before record_begin or replay_step)");
}

moe_status cpu_copy_from_host(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded([&] {
    check_not_recording(be, "copy_from_host");
    check_copy(be, dst, src, bytes);
    if (bytes) copy_bytes(*be, dst, src, bytes);
  });
}

moe_status cpu_copy_to_host(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded([&] {
    check_not_recording(be, "copy_to_host");
    be->recorder.raise_replay_error();
    check_copy(be, dst, src, bytes);
    if (bytes) copy_bytes(*be, dst, src, bytes);
  });
}

moe_status cpu_copy(moe_backend* be, void* dst, const void* src, size_t bytes) {
  return guarded([&] {
    check_copy(be, dst, src, bytes);
    if (bytes) copy_bytes(*be, dst, src, bytes);
  });
}

moe_status cpu_memset_zero(moe_backend* be, void* dst, size_t bytes) {
  return guarded([&] {
    backend_of(be);
    if (bytes == 0) return;
    check_pointer(dst, "dst");
    auto* d = static_cast<char*>(dst);
    parallel_ranges(*be, static_cast<int64_t>(bytes), kParallelBytes / 2, kAlignment,
                    [&](int64_t begin, int64_t end) { std::memset(d + begin, 0, end - begin); });
  });
}

// Every op completes before it returns.
moe_status cpu_synchronize(moe_backend* be) {
  return guarded([&] {
    check_not_recording(be, "synchronize");
    be->recorder.raise_replay_error();
  });
}

}  // namespace moe_cpu
