#include "tensor/backend.h"

#include "base/error.h"
#include "plugins/host_api.h"

#include <cstddef>
#include <iterator>

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
    : ops_(static_cast<const moe_backend_ops*>(descriptor->ops)),
      abi_minor_(MOE_PLUGIN_ABI_MINOR_OF(descriptor->abi_version)),
      name_(descriptor->name) {
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

Backend::RecordingPool* Backend::recording_pool_of_this_thread() const {
  if (recording_.empty()) return nullptr;
  auto it = recording_.find(std::this_thread::get_id());
  return it == recording_.end() ? nullptr : it->second;
}

void* Backend::allocate(size_t bytes) {
  size_t cls = allocation_size_class(bytes);
  RecordingPool* pool = nullptr;
  {
    std::lock_guard lock(cache_mutex_);
    pool = recording_pool_of_this_thread();
    if (pool) {
      auto own = pool->free_blocks.find(cls);
      if (own != pool->free_blocks.end()) {
        void* p = own->second;
        pool->free_blocks.erase(own);
        return p;
      }
    }
    auto it = free_blocks_.find(cls);
    if (it != free_blocks_.end()) {
      void* p = it->second;
      free_blocks_.erase(it);
      cached_bytes_ -= cls;
      if (pool) pool_of_[p] = pool;
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
  if (pool) {
    std::lock_guard lock(cache_mutex_);
    pool_of_[p] = pool;
  }
  return p;
}

void Backend::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t cls = allocation_size_class(bytes);
  {
    std::lock_guard lock(cache_mutex_);
    if (!pool_of_.empty()) {
      auto owned = pool_of_.find(ptr);
      if (owned != pool_of_.end()) {
        owned->second->free_blocks.emplace(cls, ptr);
        return;
      }
    }
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

bool Backend::has_argmax_rows() const {
  return has(&moe_backend_ops::argmax_rows, offsetof(moe_backend_ops, argmax_rows));
}

bool Backend::has_route_and_permute() const {
  // ABI 1.4 gave the entry other arguments (no norm); such a plugin gets the ops in turn.
  return abi_minor_ >= 5 && has(&moe_backend_ops::route_and_permute, offsetof(moe_backend_ops, route_and_permute));
}

bool Backend::has_rmsnorm_linear() const {
  return has(&moe_backend_ops::rmsnorm_linear, offsetof(moe_backend_ops, rmsnorm_linear));
}

bool Backend::has_expert_mlp_unpermute() const {
  return has(&moe_backend_ops::expert_mlp_unpermute, offsetof(moe_backend_ops, expert_mlp_unpermute));
}

bool Backend::has_rope_kv_store() const {
  return has(&moe_backend_ops::rope_kv_store, offsetof(moe_backend_ops, rope_kv_store));
}

bool Backend::can_record() const {
  return has(&moe_backend_ops::record_begin, offsetof(moe_backend_ops, record_begin)) &&
         has(&moe_backend_ops::destroy_step, offsetof(moe_backend_ops, destroy_step)) && ops_->record_end &&
         ops_->replay_step;
}

void Backend::begin_recording(RecordingPool* pool) {
  require(can_record(), MOE_ERR_UNSUPPORTED, "backend '" + name_ + "' cannot record steps");
  // The plugin makes other threads' calls wait while this one records; the pool is registered only once
  // this thread holds the recording.
  check(ops_->record_begin(handle_), "record_begin");
  std::lock_guard lock(cache_mutex_);
  recording_[std::this_thread::get_id()] = pool;
}

moe_recorded_step* Backend::end_recording(std::string* why) noexcept {
  {
    std::lock_guard lock(cache_mutex_);
    recording_.erase(std::this_thread::get_id());
  }
  take_plugin_error();
  moe_recorded_step* step = nullptr;
  const moe_status s = ops_->record_end(handle_, &step);
  std::string message = take_plugin_error();
  if (s == MOE_OK && step) return step;
  if (why) *why = message.empty() ? "record_end failed with status " + std::to_string(s) : message;
  return nullptr;
}

void Backend::release_pool(RecordingPool* pool) noexcept {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard lock(cache_mutex_);
    blocks.swap(pool->free_blocks);
    // Blocks still held by tensors leave the pool and go back through release() like any other.
    for (auto it = pool_of_.begin(); it != pool_of_.end();)
      it = it->second == pool ? pool_of_.erase(it) : std::next(it);
  }
  for (auto& [cls, p] : blocks) release(p, cls);  // no longer in pool_of_: to the cache or the plugin
}

}  // namespace moe
