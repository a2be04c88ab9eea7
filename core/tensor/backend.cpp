#include "tensor/backend.h"

#include "base/error.h"
#include "plugins/host_api.h"

namespace moe {
namespace {
// Free blocks kept for reuse beyond this are returned to the plugin.
constexpr size_t kMaxCachedBytes = size_t(2) << 30;
}  // namespace

size_t allocation_size_class(size_t bytes) {
  if (bytes <= 4096) return 4096;
  // Powers of two split in four: at most 25% waste, few distinct classes.
  size_t p = 4096;
  while (p < bytes) p <<= 1;
  size_t quarter = p / 8;
  size_t cls = p / 2;
  while (cls < bytes) cls += quarter;
  return cls;
}

Backend::Backend(const moe_plugin_descriptor* descriptor, const moe_backend_options& options)
    : ops_(static_cast<const moe_backend_ops*>(descriptor->ops)), name_(descriptor->name) {
  take_plugin_error();
  moe_status s = ops_->create(&options, &handle_);
  if (s != MOE_OK || !handle_) {
    auto why = take_plugin_error();
    fail(s != MOE_OK ? s : MOE_ERR_BACKEND,
         "backend '" + name_ + "' could not start" + (why.empty() ? std::string() : ": " + why));
  }
  if (ops_->device_description) description_ = ops_->device_description(handle_);
}

Backend::~Backend() {
  trim();
  if (handle_) ops_->destroy(handle_);
}

void Backend::check(moe_status status, const char* op) const {
  if (status == MOE_OK) return;
  auto why = take_plugin_error();
  fail(status, std::string("backend '") + name_ + "' op " + op + " failed" + (why.empty() ? "" : ": " + why));
}

void* Backend::allocate(size_t bytes) {
  size_t cls = allocation_size_class(bytes);
  {
    std::lock_guard lock(cache_mutex_);
    auto it = free_blocks_.find(cls);
    if (it != free_blocks_.end()) {
      void* p = it->second;
      free_blocks_.erase(it);
      cached_bytes_ -= cls;
      return p;
    }
  }
  void* p = nullptr;
  moe_status s = ops_->alloc(handle_, cls, &p);
  if (s != MOE_OK || !p) {
    trim();  // give cached blocks back and try once more
    s = ops_->alloc(handle_, cls, &p);
  }
  if (s != MOE_OK || !p) {
    auto why = take_plugin_error();
    fail(MOE_ERR_OUT_OF_MEMORY, "backend '" + name_ + "' could not allocate " + std::to_string(bytes) + " bytes" +
                                    (why.empty() ? "" : ": " + why));
  }
  return p;
}

void Backend::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t cls = allocation_size_class(bytes);
  {
    std::lock_guard lock(cache_mutex_);
    if (cached_bytes_ + cls <= kMaxCachedBytes) {
      free_blocks_.emplace(cls, ptr);
      cached_bytes_ += cls;
      return;
    }
  }
  ops_->free(handle_, ptr);
}

void Backend::trim() {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard lock(cache_mutex_);
    blocks.swap(free_blocks_);
    cached_bytes_ = 0;
  }
  for (auto& [size, p] : blocks) ops_->free(handle_, p);
}

}  // namespace moe
