// Shape checks shared by kv_store, kv_load and the attention ops for the KV caches
// k_cache [slots, kv_heads, capacity, dk] and v_cache [slots, kv_heads, capacity, dv].
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

struct KvCacheShape {
  int64_t slots, kv_heads, capacity, dk, dv;
};

KvCacheShape check_kv_caches(const moe_tensor* k_cache, const moe_tensor* v_cache);

// kv_store's and kv_load's checks: the caches, k f32 [tokens, kv_heads, dk] and v f32 [tokens, kv_heads, dv]
// of the caches' shape; slot and position i32 [tokens] (their shapes only: values are checked on the host or
// the device, index_checks.h). Returns the caches' shape; tokens = k's first dimension.
KvCacheShape check_kv_rows(const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                           const moe_tensor* position, const moe_tensor* k_cache, const moe_tensor* v_cache);

}  // namespace moe_cuda
