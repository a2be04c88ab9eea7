// Shape checks shared by kv_store and attention for the KV caches
// k_cache [slots, kv_heads, capacity, dk] and v_cache [slots, kv_heads, capacity, dv].
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cpu {

struct KvCacheShape {
  int64_t slots, kv_heads, capacity, dk, dv;
};

KvCacheShape check_kv_caches(const moe_tensor* k_cache, const moe_tensor* v_cache);

// Checks an i32 tensor with one entry per token whose entries must lie in [low, high].
const int32_t* check_token_indices(const moe_tensor* t, const char* name, int64_t tokens, int64_t low, int64_t high);

}  // namespace moe_cpu
