// rope_kv_store (plugin ABI 1.5): a layer's new queries and keys rotated in place, and its keys and values
// stored into the KV cache.
//
// A recorded decode step ran them as two kernels (rope_pairs over the query and key heads, adjacent in the
// stacked q/k/v row, then move_rows), the second a few microseconds of launch and dependency latency around
// almost no work. While recording with the fused kernels switched on (fused_decode.h), one kernel does both:
// a thread per query pair rotates it as rope_pairs does (rotate_pair, rope.h); a thread per key pair rotates
// it and writes both elements to the cache as well; a thread per other key element, and per value element,
// copies it to the cache as move_rows does. Each checks its token's entries on the device as those kernels
// do (device_index_checks.h), so the results and reports are theirs. Everything else runs the rope op (once
// over the query and key heads where they are adjacent, as in a one-token step's stacked row, else once
// each) and the kv_store op.
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "fused_decode.h"
#include "kv_cache.h"
#include "pdl_launch.cuh"
#include "recording.h"
#include "rope.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

struct RopeStoreArgs {
  float* q;  // [tokens, heads, dk], rotated in place
  float* k;  // [tokens, kv_heads, dk], rotated in place and stored
  const float* v;  // [tokens, kv_heads, dv], stored
  const int32_t* positions;
  const float* cos_table;
  const float* sin_table;
  const int32_t* slot;
  float* k_cache;
  float* v_cache;
  int64_t heads, kv_heads, dk, dv, rot_offset, half, max_positions, slots, capacity;
  bool neox;
  // Items, in this order: query pairs, key pairs, key elements outside the rotary dims, value elements.
  int64_t q_pairs, k_pairs, k_plain, n;
  IndexError* errors;
};

// Whether token t's cache entry (slot, position) is inside the caches, as move_rows checks it.
__device__ bool cache_entry_ok(const RopeStoreArgs& a, int64_t t, int64_t s, int64_t p) {
  return index_ok(a.errors, IndexCheck::kKvStoreSlot, t, -1, s, 0, a.slots - 1) &&
         index_ok(a.errors, IndexCheck::kKvStorePosition, t, -1, p, 0, a.capacity - 1);
}

__global__ void rope_store(RopeStoreArgs a) {
  pdl_wait_and_release();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < a.n; i += int64_t{gridDim.x} * blockDim.x) {
    if (i < a.q_pairs + a.k_pairs) {
      // A query or key pair, as rope_pairs rotates it.
      const bool key = i >= a.q_pairs;
      const int64_t e = key ? i - a.q_pairs : i, heads = key ? a.kv_heads : a.heads;
      const int64_t pair = e % a.half, head_index = e / a.half, t = head_index / heads;
      const int64_t p = a.positions[t];
      const int64_t i1 = a.rot_offset + (a.neox ? pair : 2 * pair);
      const int64_t i2 = a.rot_offset + (a.neox ? pair + a.half : 2 * pair + 1);
      float* head = (key ? a.k : a.q) + head_index * a.dk;
      if (index_ok(a.errors, IndexCheck::kRopePositions, t, -1, p, 0, a.max_positions - 1))
        rotate_pair(head[i1], head[i2], a.cos_table[p * a.half + pair], a.sin_table[p * a.half + pair], head[i1],
                    head[i2]);
      if (!key) continue;
      const int64_t s = a.slot[t], h = head_index % a.kv_heads;
      if (!cache_entry_ok(a, t, s, p)) continue;
      float* row = a.k_cache + ((s * a.kv_heads + h) * a.capacity + p) * a.dk;
      row[i1] = head[i1];
      row[i2] = head[i2];
      continue;
    }
    // A key element outside the rotary dims, or a value element: copied as move_rows copies it.
    const bool key = i < a.q_pairs + a.k_pairs + a.k_plain;
    const int64_t e = key ? i - a.q_pairs - a.k_pairs : i - a.q_pairs - a.k_pairs - a.k_plain;
    const int64_t width = key ? a.dk - 2 * a.half : a.dv;
    const int64_t column = e % width, head_index = e / width, t = head_index / a.kv_heads, h = head_index % a.kv_heads;
    // A key's plain dims are those before the rotary range and those after it.
    const int64_t d = key && column >= a.rot_offset ? column + 2 * a.half : column;
    const int64_t s = a.slot[t], p = a.positions[t];
    if (!cache_entry_ok(a, t, s, p)) continue;
    const int64_t full = key ? a.dk : a.dv;
    const int64_t at = ((s * a.kv_heads + h) * a.capacity + p) * full + d;
    if (key)
      a.k_cache[at] = a.k[head_index * a.dk + d];
    else
      a.v_cache[at] = a.v[head_index * a.dv + d];
  }
}

}  // namespace

moe_status cuda_rope_kv_store(moe_backend* be, moe_tensor* q, moe_tensor* k, const moe_tensor* v,
                              const moe_tensor* positions, const moe_tensor* cos_table, const moe_tensor* sin_table,
                              int32_t rot_offset, int32_t rot_dim, int32_t layout, const moe_tensor* slot,
                              moe_tensor* k_cache, moe_tensor* v_cache) {
  bool fused = false, adjacent = false;
  const moe_status checked = guarded(be, [&](moe_backend& b) {
    const RopeShape rq = check_rope(q, "q", positions, cos_table, sin_table, rot_offset, rot_dim, layout);
    const RopeShape rk = check_rope(k, "k", positions, cos_table, sin_table, rot_offset, rot_dim, layout);
    const KvCacheShape c = check_kv_rows(k, v, slot, positions, k_cache, v_cache);
    if (rq.head_dim != c.dk)
      invalid("q " + shape_string(*q) + " must have the keys' head dim " + std::to_string(c.dk));
    check_disjoint(q, "q", k, "k", "both are rotated in place");
    check_disjoint(q, "q", v, "v", "q is rotated in place while v is read");
    check_disjoint(k, "k", v, "v", "k is rotated in place while v is read");
    // q and k as one [1, heads + kv_heads, dk] tensor, the rope op's single call of the stacked row.
    adjacent = rq.tokens == 1 &&
               static_cast<const float*>(k->data) == static_cast<const float*>(q->data) + rq.heads * rq.head_dim;
    if (!recording(b) || !fused_decode_switched_on("rope_kv_store")) return;
    RopeStoreArgs a{};
    a.q = data_of<float>(q);
    a.k = data_of<float>(k);
    a.v = data_of<const float>(v);
    a.positions = data_of<const int32_t>(positions);
    a.cos_table = data_of<const float>(cos_table);
    a.sin_table = data_of<const float>(sin_table);
    a.slot = data_of<const int32_t>(slot);
    a.k_cache = data_of<float>(k_cache);
    a.v_cache = data_of<float>(v_cache);
    a.heads = rq.heads;
    a.kv_heads = c.kv_heads;
    a.dk = c.dk;
    a.dv = c.dv;
    a.rot_offset = rot_offset;
    a.half = rq.half;
    a.max_positions = rq.max_positions;
    a.slots = c.slots;
    a.capacity = c.capacity;
    a.neox = layout == MOE_ROPE_NEOX;
    a.q_pairs = rq.tokens * rq.heads * rq.half;
    a.k_pairs = rk.tokens * c.kv_heads * rq.half;
    a.k_plain = rk.tokens * c.kv_heads * (c.dk - 2 * rq.half);
    a.n = a.q_pairs + a.k_pairs + a.k_plain + rk.tokens * c.kv_heads * c.dv;
    a.errors = device_index_errors(b);
    fused = true;
    if (a.n == 0) return;
    launch_pdl(b, "rope_store", rope_store, grid_for(a.n), kThreads, 0, a);
  });
  if (checked != MOE_OK || fused) return checked;
  // The two ops in turn; each reports its own failure.
  moe_status s = MOE_OK;
  if (adjacent) {
    moe_tensor qk = *q;
    qk.shape[1] = q->shape[1] + k->shape[1];
    s = cuda_rope(be, &qk, positions, cos_table, sin_table, rot_offset, rot_dim, layout);
  } else {
    s = cuda_rope(be, q, positions, cos_table, sin_table, rot_offset, rot_dim, layout);
    if (s == MOE_OK) s = cuda_rope(be, k, positions, cos_table, sin_table, rot_offset, rot_dim, layout);
  }
  if (s != MOE_OK) return s;
  return cuda_kv_store(be, k, v, slot, positions, k_cache, v_cache);
}

}  // namespace moe_cuda
