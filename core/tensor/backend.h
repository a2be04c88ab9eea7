// A backend instance seen from the core: the plugin's op table plus its instance handle, with
// statuses turned into moe::Error (carrying the plugin's message) and a caching allocator in front of
// the plugin's alloc/free, so that per-step activations do not go back to the OS (or cudaMalloc).
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe {

class Backend {
 public:
  Backend(const moe_plugin_descriptor* descriptor, const moe_backend_options& options);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const std::string& name() const { return name_; }
  const std::string& description() const { return description_; }
  const moe_backend_ops& ops() const { return *ops_; }
  moe_backend* handle() const { return handle_; }

  // Throws moe::Error naming the op and carrying the plugin's message when status is not OK.
  void check(moe_status status, const char* op) const;

  // True when the plugin's table is recent enough to hold `op` and the plugin filled it in.
  template <typename Fn>
  bool has(Fn moe_backend_ops::*op, size_t offset) const {
    return ops_->struct_size >= offset + sizeof(void*) && ops_->*op != nullptr;
  }

  void* allocate(size_t bytes);
  void release(void* ptr, size_t bytes);
  // Returns cached blocks to the plugin.
  void trim();

  // Whether the plugin takes each row's argmax on the device (plugin ABI 1.3; ops::argmax_rows). Where
  // it does not, greedy decoding copies the logits and takes the argmax on the host.
  bool has_argmax_rows() const;
  // Whether the plugin runs a MoE layer's input norm, router and dispatch as one op (plugin ABI 1.5;
  // ops::route_and_permute). Where it does not, ops::route_and_permute calls rmsnorm, gemm, the router and
  // moe_permute in turn.
  bool has_route_and_permute() const;
  // Whether the plugin runs a norm and the product that reads it as one op (plugin ABI 1.5;
  // ops::rmsnorm_linear). Where it does not, ops::rmsnorm_linear calls rmsnorm and gemm.
  bool has_rmsnorm_linear() const;
  // Whether the plugin runs the experts and the combination of their outputs as one op (plugin ABI 1.5;
  // ops::expert_mlp_unpermute). Where it does not, ops::expert_mlp_unpermute calls the two ops.
  bool has_expert_mlp_unpermute() const;
  // Whether the plugin rotates a layer's new queries and keys and stores its keys and values as one op
  // (plugin ABI 1.5; ops::rope_kv_store). Where it does not, ops::rope_kv_store calls rope and kv_store.
  bool has_rope_kv_store() const;

  // Recorded steps (plugin ABI 1.2). Blocks that the recording thread allocates between begin_recording
  // and end_recording belong to the recording's pool until release_pool: replays write into them, so the
  // cache must not hand them to other tensors meanwhile (the recording reuses its own freed blocks).
  struct RecordingPool;
  bool can_record() const;
  void begin_recording(RecordingPool* pool);
  // Ends this thread's recording; the step, or nullptr with the plugin's reason in `why` when it failed.
  moe_recorded_step* end_recording(std::string* why) noexcept;
  // Gives the pool's free blocks back to the cache (after the step that used them was destroyed).
  void release_pool(RecordingPool* pool) noexcept;

 private:
  RecordingPool* recording_pool_of_this_thread() const;  // under cache_mutex_

  const moe_backend_ops* ops_;
  uint32_t abi_minor_;  // the plugin ABI minor version the plugin was built for
  moe_backend* handle_ = nullptr;
  std::string name_;
  std::string description_;

  std::mutex cache_mutex_;
  std::multimap<size_t, void*> free_blocks_;  // by rounded size
  size_t cached_bytes_ = 0;
  std::unordered_map<std::thread::id, RecordingPool*> recording_;  // recording threads and their pools
  std::unordered_map<void*, RecordingPool*> pool_of_;              // blocks owned by a recording's pool
};

struct Backend::RecordingPool {
  std::multimap<size_t, void*> free_blocks;  // by rounded size
};

// The size class a request is rounded up to (the cache reuses blocks of the same class).
size_t allocation_size_class(size_t bytes);

}  // namespace moe
