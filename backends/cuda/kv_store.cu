// kv_store: new keys and values into their cache slots and positions; kv_load: the reverse. Slots and
// positions are checked on the host, or by the kernel while a step is recorded (device_index_checks.h).
#include <string>
#include <tuple>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "index_checks.h"
#include "kv_cache.h"
#include "pdl_launch.cuh"
#include "tensor_checks.h"

namespace moe_cuda {

KvCacheShape check_kv_caches(const moe_tensor* k_cache, const moe_tensor* v_cache) {
  check_tensor(k_cache, "k_cache", MOE_DTYPE_F32, 4);
  check_tensor(v_cache, "v_cache", MOE_DTYPE_F32, 4);
  const KvCacheShape s{k_cache->shape[0], k_cache->shape[1], k_cache->shape[2], k_cache->shape[3], v_cache->shape[3]};
  if (v_cache->shape[0] != s.slots || v_cache->shape[1] != s.kv_heads || v_cache->shape[2] != s.capacity)
    invalid("k_cache " + shape_string(*k_cache) + " and v_cache " + shape_string(*v_cache) +
            " must agree in [slots, kv_heads, capacity]");
  return s;
}

KvCacheShape check_kv_rows(const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                           const moe_tensor* position, const moe_tensor* k_cache, const moe_tensor* v_cache) {
  const KvCacheShape c = check_kv_caches(k_cache, v_cache);
  check_tensor(k, "k", MOE_DTYPE_F32, 3);
  check_tensor(v, "v", MOE_DTYPE_F32, 3);
  const int64_t tokens = k->shape[0];
  if (v->shape[0] != tokens || k->shape[1] != c.kv_heads || v->shape[1] != c.kv_heads || k->shape[2] != c.dk ||
      v->shape[2] != c.dv)
    invalid("k " + shape_string(*k) + " and v " + shape_string(*v) +
            " must be [tokens, kv_heads, dk | dv] of the caches " + shape_string(*k_cache) + ", " +
            shape_string(*v_cache));
  if (check_tensor(slot, "slot", MOE_DTYPE_I32, -1) != tokens ||
      check_tensor(position, "position", MOE_DTYPE_I32, -1) != tokens)
    invalid("slot " + shape_string(*slot) + " and position " + shape_string(*position) +
            " must have one entry per token (" + std::to_string(tokens) + ")");
  return c;
}

namespace {

// One thread per element of the per-token rows k [tokens, kv_heads, dk] and v [tokens, kv_heads, dv] (the
// keys' elements first, then the values': one launch moves both), each moved to or from the cache row of
// its token's slot and position. `errors` is set while recording: a token with a bad slot or position is
// skipped.
struct MoveArgs {
  float* k;
  float* v;
  float* k_cache;
  float* v_cache;
  const int32_t* slot;
  const int32_t* position;
  int64_t slots, kv_heads, capacity, dk, dv, n_k, n;  // n_k: the keys' elements; n: keys' and values'
  bool into_cache;
  IndexError* errors;
};

__global__ void move_rows(MoveArgs a) {
  pdl_wait_and_release();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < a.n; i += int64_t{gridDim.x} * blockDim.x) {
    const bool key = i < a.n_k;
    const int64_t e = key ? i : i - a.n_k, width = key ? a.dk : a.dv;
    const int64_t d = e % width, th = e / width, t = th / a.kv_heads, h = th % a.kv_heads;
    const int64_t s = a.slot[t], p = a.position[t];
    if (a.errors &&
        (!index_ok(a.errors, a.into_cache ? IndexCheck::kKvStoreSlot : IndexCheck::kKvLoadSlot, t, -1, s, 0,
                   a.slots - 1) ||
         !index_ok(a.errors, a.into_cache ? IndexCheck::kKvStorePosition : IndexCheck::kKvLoadPosition, t, -1, p, 0,
                   a.capacity - 1)))
      continue;
    const int64_t at = ((s * a.kv_heads + h) * a.capacity + p) * width + d;
    float* rows = key ? a.k : a.v;
    float* cache = key ? a.k_cache : a.v_cache;
    if (a.into_cache)
      cache[at] = rows[e];
    else
      rows[e] = cache[at];
  }
}

void move(moe_backend& b, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot, const moe_tensor* position,
          const moe_tensor* k_cache, const moe_tensor* v_cache, bool into_cache) {
  const KvCacheShape c = check_kv_rows(k, v, slot, position, k_cache, v_cache);
  const int64_t tokens = k->shape[0];
  IndexError* errors = recording(b) ? device_index_errors(b) : nullptr;
  if (!errors) {
    token_indices(b, slot, "slot", tokens, 0, c.slots - 1);
    token_indices(b, position, "position", tokens, 0, c.capacity - 1);
  }
  MoveArgs a{};
  a.k = static_cast<float*>(k->data);
  a.v = static_cast<float*>(v->data);
  a.k_cache = static_cast<float*>(k_cache->data);
  a.v_cache = static_cast<float*>(v_cache->data);
  a.slot = static_cast<const int32_t*>(slot->data);
  a.position = static_cast<const int32_t*>(position->data);
  a.slots = c.slots;
  a.kv_heads = c.kv_heads;
  a.capacity = c.capacity;
  a.dk = c.dk;
  a.dv = c.dv;
  a.n_k = tokens * c.kv_heads * c.dk;
  a.n = a.n_k + tokens * c.kv_heads * c.dv;
  a.into_cache = into_cache;
  a.errors = errors;
  if (a.n == 0) return;
  launch_pdl(b, "move_rows", move_rows, grid_for(a.n), kThreads, 0, a);
}

}  // namespace

moe_status cuda_kv_store(moe_backend* be, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                         const moe_tensor* position, moe_tensor* k_cache, moe_tensor* v_cache) {
  return guarded(be, [&](moe_backend& b) { move(b, k, v, slot, position, k_cache, v_cache, true); });
}

moe_status cuda_kv_load(moe_backend* be, const moe_tensor* k_cache, const moe_tensor* v_cache, const moe_tensor* slot,
                        const moe_tensor* position, moe_tensor* k, moe_tensor* v) {
  return guarded(be, [&](moe_backend& b) { move(b, k, v, slot, position, k_cache, v_cache, false); });
}

}  // namespace moe_cuda
