// kv_store: new keys and values into their cache slots and positions; kv_load: the reverse.
#include <cstring>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "kv_cache.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

KvCacheShape check_kv_caches(const moe_tensor* k_cache, const moe_tensor* v_cache) {
  check_tensor(k_cache, "k_cache", MOE_DTYPE_F32, 4);
  check_tensor(v_cache, "v_cache", MOE_DTYPE_F32, 4);
  const KvCacheShape s{k_cache->shape[0], k_cache->shape[1], k_cache->shape[2], k_cache->shape[3], v_cache->shape[3]};
  if (v_cache->shape[0] != s.slots || v_cache->shape[1] != s.kv_heads || v_cache->shape[2] != s.capacity)
    invalid("k_cache " + shape_string(*k_cache) + " and v_cache " + shape_string(*v_cache) +
            " must agree in [slots, kv_heads, capacity]");
  return s;
}

const int32_t* check_token_indices(const moe_tensor* t, const char* name, int64_t tokens, int64_t low, int64_t high) {
  if (check_tensor(t, name, MOE_DTYPE_I32, -1) != tokens)
    invalid(std::string(name) + " " + shape_string(*t) + " must have one entry per token (" + std::to_string(tokens) +
            ")");
  const int32_t* v = data_of<const int32_t>(t);
  for (int64_t i = 0; i < tokens; ++i)
    if (v[i] < low || v[i] > high)
      invalid(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) + " is outside [" +
              std::to_string(low) + ", " + std::to_string(high) + "]");
  return v;
}

namespace {

// Copies between per-token rows k, v [tokens, kv_heads, dk | dv] and cache rows, either way.
void move_rows(moe_backend& backend, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
               const moe_tensor* position, const moe_tensor* k_cache, const moe_tensor* v_cache, bool into_cache) {
  const KvCacheShape c = check_kv_caches(k_cache, v_cache);
  check_tensor(k, "k", MOE_DTYPE_F32, 3);
  check_tensor(v, "v", MOE_DTYPE_F32, 3);
  const int64_t tokens = k->shape[0];
  if (v->shape[0] != tokens || k->shape[1] != c.kv_heads || v->shape[1] != c.kv_heads || k->shape[2] != c.dk ||
      v->shape[2] != c.dv)
    invalid("k " + shape_string(*k) + " and v " + shape_string(*v) +
            " must be [tokens, kv_heads, dk | dv] of the caches " + shape_string(*k_cache) + ", " +
            shape_string(*v_cache));
  const int32_t* s = check_token_indices(slot, "slot", tokens, 0, c.slots - 1);
  const int32_t* p = check_token_indices(position, "position", tokens, 0, c.capacity - 1);
  auto* kd = static_cast<float*>(k->data);
  auto* vd = static_cast<float*>(v->data);
  auto* kc = static_cast<float*>(k_cache->data);
  auto* vc = static_cast<float*>(v_cache->data);
  const int64_t min_rows = kMinFloatsPerThread / (2 * (c.dk + c.dv) + 1) + 1;
  parallel_ranges(backend, tokens * c.kv_heads, min_rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / c.kv_heads, h = i % c.kv_heads;
      const int64_t row = (s[t] * c.kv_heads + h) * c.capacity + p[t];
      if (into_cache) {
        std::memcpy(kc + row * c.dk, kd + i * c.dk, c.dk * sizeof(float));
        std::memcpy(vc + row * c.dv, vd + i * c.dv, c.dv * sizeof(float));
      } else {
        std::memcpy(kd + i * c.dk, kc + row * c.dk, c.dk * sizeof(float));
        std::memcpy(vd + i * c.dv, vc + row * c.dv, c.dv * sizeof(float));
      }
    }
  });
}

}  // namespace

moe_status cpu_kv_store(moe_backend* be, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                        const moe_tensor* position, moe_tensor* k_cache, moe_tensor* v_cache) {
  return guarded([&] { move_rows(backend_of(be), k, v, slot, position, k_cache, v_cache, true); });
}

moe_status cpu_kv_load(moe_backend* be, const moe_tensor* k_cache, const moe_tensor* v_cache, const moe_tensor* slot,
                       const moe_tensor* position, moe_tensor* k, moe_tensor* v) {
  return guarded([&] { move_rows(backend_of(be), k, v, slot, position, k_cache, v_cache, false); });
}

}  // namespace moe_cpu
