// Recorded attention over short caches in one pass: a block per (token, kv head, group of up to 8 query
// heads) reads every key and value of the token below kv_len itself, so there are no partials to combine
// across blocks (the split kernel's counters, fences and second read). At decode sizes the time is latency,
// not bandwidth, and this kernel keeps each phase to about one round trip to memory:
//  - scores: a thread per key loads the key row in 16-byte loads, all in flight at once, and dots it with
//    the group's query rows (in shared memory);
//  - softmax: a warp per head over the scores in shared memory;
//  - values: warp w sums the keys j = w, w + 8, ..., each lane a few output columns (a value row is one
//    coalesced load per warp), and the warps' sums are added in warp order (the same bits on every run).
// Everything is f32, as the op table asks.
#include "attention_decode_short.h"

#include <algorithm>

#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "pdl_launch.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

constexpr int kShortThreads = 256;
constexpr int kShortWarps = kShortThreads / 32;
constexpr int kShortHeads = 8;  // query heads per block

struct ShortArgs {
  const float* q;  // [tokens, heads, dk]
  const float* k_cache;
  const float* v_cache;
  const int32_t* slot;
  const int32_t* kv_len;
  float* out;  // [tokens, heads, dv]
  IndexError* errors;
  int heads, kv_heads, group, head_blocks, block_heads, dk, dv, slots, capacity;
  float scale;
};

// DK, DV: the head dims' bounds (64 or 128; the real dims are multiples of 4 up to these).
template <int DK, int DV>
__global__ void __launch_bounds__(kShortThreads) decode_short(ShortArgs a) {
  extern __shared__ float4 smem4[];
  float* qs = reinterpret_cast<float*>(smem4);  // [block_heads][DK], zero past dk
  float* ps = qs + a.block_heads * DK;          // [block_heads][capacity]: scores, then probabilities
  float* part = ps + a.block_heads * a.capacity;  // [warps][block_heads][DV]: the warps' value sums
  float* inv_sum = part + kShortWarps * a.block_heads * DV;  // [block_heads]
  pdl_wait_and_release();
  const int hb = blockIdx.x % a.head_blocks, kvh = blockIdx.x / a.head_blocks % a.kv_heads;
  const int t = blockIdx.x / (a.head_blocks * a.kv_heads);
  const int h0 = kvh * a.group + hb * kShortHeads, nh = min(kShortHeads, a.group - hb * kShortHeads);
  const int s = a.slot[t], len = a.kv_len[t];
  // Every block of the token finds the same entries; the token's first block reports a bad one.
  IndexError* e = blockIdx.x % (a.head_blocks * a.kv_heads) == 0 && threadIdx.x == 0 ? a.errors : nullptr;
  if (!index_ok(e, IndexCheck::kAttentionSlot, t, -1, s, 0, a.slots - 1) ||
      !index_ok(e, IndexCheck::kAttentionKvLen, t, -1, len, 1, a.capacity))
    return;
  const float* qt = a.q + (int64_t{t} * a.heads + h0) * a.dk;
  for (int i = threadIdx.x; i < nh * DK; i += kShortThreads) {
    const int g = i / DK, d = i % DK;
    qs[i] = d < a.dk ? qt[g * a.dk + d] : 0.f;
  }
  __syncthreads();

  const int64_t first_row = (int64_t{s} * a.kv_heads + kvh) * a.capacity;
  const float* keys = a.k_cache + first_row * a.dk;
  for (int j = threadIdx.x; j < len; j += kShortThreads) {
    const float4* row = reinterpret_cast<const float4*>(keys + int64_t{j} * a.dk);
    float4 k[DK / 4];
#pragma unroll
    for (int i = 0; i < DK / 4; ++i) k[i] = 4 * i < a.dk ? row[i] : make_float4(0.f, 0.f, 0.f, 0.f);
    for (int g = 0; g < nh; ++g) {
      const float4* qg = reinterpret_cast<const float4*>(qs + g * DK);
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < DK / 4; ++i) {
        const float4 qv = qg[i];
        dot += k[i].x * qv.x + k[i].y * qv.y + k[i].z * qv.z + k[i].w * qv.w;
      }
      ps[g * a.capacity + j] = dot * a.scale;
    }
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int g = warp; g < nh; g += kShortWarps) {
    float m, l;
    warp_exp_shifted(ps + g * a.capacity, len, m, l);
    if (lane == 0) inv_sum[g] = 1.f / l;
  }
  __syncthreads();

  constexpr int kCols = DV / 32;  // output columns per lane
  const int c0 = lane * kCols;
  float acc[kShortHeads][kCols];
#pragma unroll
  for (int g = 0; g < kShortHeads; ++g)
#pragma unroll
    for (int i = 0; i < kCols; ++i) acc[g][i] = 0.f;
  const float* values = a.v_cache + first_row * a.dv;
  if (c0 < a.dv) {
#pragma unroll 4
    for (int j = warp; j < len; j += kShortWarps) {
      float v[kCols];
      if constexpr (kCols == 4) {
        const float4 x = *reinterpret_cast<const float4*>(values + int64_t{j} * a.dv + c0);
        v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
      } else {
        const float2 x = *reinterpret_cast<const float2*>(values + int64_t{j} * a.dv + c0);
        v[0] = x.x, v[1] = x.y;
      }
#pragma unroll
      for (int g = 0; g < kShortHeads; ++g) {
        if (g >= nh) break;
        const float p = ps[g * a.capacity + j];
#pragma unroll
        for (int i = 0; i < kCols; ++i) acc[g][i] += p * v[i];
      }
    }
#pragma unroll
    for (int g = 0; g < kShortHeads; ++g) {
      if (g >= nh) break;
#pragma unroll
      for (int i = 0; i < kCols; ++i) part[(warp * a.block_heads + g) * DV + c0 + i] = acc[g][i];
    }
  }
  __syncthreads();
  for (int o = threadIdx.x; o < nh * a.dv; o += kShortThreads) {
    const int g = o / a.dv, c = o % a.dv;
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kShortWarps; ++w) sum += part[(w * a.block_heads + g) * DV + c];
    a.out[(int64_t{t} * a.heads + h0 + g) * a.dv + c] = sum * inv_sum[g];
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int DK, int DV>
void launch(moe_backend& be, const ShortArgs& a, unsigned blocks) {
  const size_t floats =
      size_t(a.block_heads) * (DK + a.capacity + kShortWarps * DV) + kShortHeads;
  launch_pdl(be, "decode_short", decode_short<DK, DV>, blocks, kShortThreads, floats * sizeof(float), a);
}

}  // namespace

bool attention_decode_short(moe_backend& be, const moe_tensor* q, const moe_tensor* k_cache,
                            const moe_tensor* v_cache, const KvCacheShape& c, const moe_tensor* slot,
                            const moe_tensor* kv_len, float scale, moe_tensor* out, IndexError* errors) {
  const int64_t tokens = q->shape[0], heads = q->shape[1];
  if (c.capacity > kShortMaxCapacity || c.dk > 128 || c.dv > 128 || c.dk % 4 != 0 || c.dv % 4 != 0 ||
      !aligned16(q->data) || !aligned16(k_cache->data) || !aligned16(v_cache->data) || tokens == 0 ||
      tokens * c.kv_heads * ((heads / c.kv_heads + kShortHeads - 1) / kShortHeads) > INT32_MAX)
    return false;
  ShortArgs a{};
  a.q = data_of<const float>(q);
  a.k_cache = data_of<const float>(k_cache);
  a.v_cache = data_of<const float>(v_cache);
  a.slot = data_of<const int32_t>(slot);
  a.kv_len = data_of<const int32_t>(kv_len);
  a.out = data_of<float>(out);
  a.errors = errors;
  a.heads = static_cast<int>(heads);
  a.kv_heads = static_cast<int>(c.kv_heads);
  a.group = static_cast<int>(heads / c.kv_heads);
  a.head_blocks = (a.group + kShortHeads - 1) / kShortHeads;
  a.block_heads = std::min(a.group, kShortHeads);
  a.dk = static_cast<int>(c.dk);
  a.dv = static_cast<int>(c.dv);
  a.slots = static_cast<int>(c.slots);
  a.capacity = static_cast<int>(c.capacity);
  a.scale = scale;
  const unsigned blocks = static_cast<unsigned>(tokens * a.kv_heads * a.head_blocks);
  if (c.dk <= 64 && c.dv <= 64)
    launch<64, 64>(be, a, blocks);
  else
    launch<128, 128>(be, a, blocks);
  return true;
}

}  // namespace moe_cuda
