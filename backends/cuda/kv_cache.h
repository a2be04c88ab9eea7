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

}  // namespace moe_cuda
