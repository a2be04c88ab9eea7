// The attention forward on bf16 tensor cores, FlashAttention-2 style, for instances that compute f32
// products on bf16 tensor cores (MOE_CUDA_F32_MATH=bf16): q, keys and values are rounded to bf16 as they
// are loaded into shared memory, products accumulate in f32, the softmax is f32.
//
// A block takes an item of up to 64 rows (attention_plan.h: consecutive tokens of one slot, the query
// heads of one kv head); each of its 4 warps owns 16 rows and keeps their query fragments, running
// maximum, exp-sum and output in registers. For each block of 64 keys the block loads keys and values
// once (f32 from the cache, bf16 into shared memory); a warp computes its 16 x 64 scores with mma.sync,
// masks the keys at or past each row's kv_len, rescales, and multiplies the probabilities, still in
// registers (mma_bf16.cuh), by the values. Scores never reach memory; nothing is atomic, so the result
// does not depend on scheduling.
#include <algorithm>
#include <vector>

#include "attention_forward_mma.h"
#include "attention_kernels.cuh"
#include "attention_tile_products.cuh"
#include "device_buffer.h"
#include "mma_bf16.cuh"

namespace moe_cuda {
namespace {

constexpr int kMmaThreads = 128;
constexpr int kMmaRows = 64;  // an item's rows: 4 warps of 16
constexpr int kMmaKeys = 64;  // keys per block

// DK, DV: the head dims padded to 16.
template <int DK, int DV>
__global__ void __launch_bounds__(kMmaThreads) attention_forward_mma(AttentionArgs a, float* out, bool vector_q,
                                                                     bool vector_k, bool vector_v) {
  constexpr int kp = DK + 8, vp = DV + 8;  // row pitches: 16-byte rows for ldmatrix, no bank conflicts
  extern __shared__ uint4 smem_raw[];
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [kMmaRows][kp]
  __nv_bfloat16* ks = qs + kMmaRows * kp;                             // [kMmaKeys][kp]
  __nv_bfloat16* vs = ks + kMmaKeys * kp;                             // [kMmaKeys][vp]
  const AttentionItem it = a.items[blockIdx.x];
  const int rows = it.tokens * it.heads;
  load_rows_bf16<kMmaThreads, kMmaRows, DK>(
      [&](int r) -> const float* { return r < rows ? a.q + row_offset(a, it, r) * a.dk : nullptr; }, a.dk, vector_q,
      qs, kp);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, c = lane % 4;
  const int r0 = warp * 16 + lane / 4, r1 = r0 + 8;  // the lane's two rows (fragment rows g and g + 8)
  const int len[2] = {r0 < rows ? a.kv_len[it.first_token + r0 / it.heads] : 0,
                      r1 < rows ? a.kv_len[it.first_token + r1 / it.heads] : 0};
  const int warp_len = __reduce_max_sync(0xffffffffu, max(len[0], len[1]));
  __syncthreads();
  uint32_t qf[DK / 16][4];
  load_a_fragments<DK>(qf, qs, kp, warp * 16);

  float o[DV / 8][4];
#pragma unroll
  for (int dt = 0; dt < DV / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // in log2 units of the scaled scores
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const float* k_rows = a.k_cache + cache_row(a, it) * a.dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * a.dv;

  for (int kb = 0; kb < it.max_len; kb += kMmaKeys) {
    const int nk = min(kMmaKeys, it.max_len - kb);
    __syncthreads();  // every warp is done with the previous block's keys and values
    load_rows_bf16<kMmaThreads, kMmaKeys, DK>(
        [&](int j) -> const float* { return j < nk ? k_rows + int64_t{kb + j} * a.dk : nullptr; }, a.dk, vector_k, ks,
        kp);
    load_rows_bf16<kMmaThreads, kMmaKeys, DV>(
        [&](int j) -> const float* { return j < nk ? v_rows + int64_t{kb + j} * a.dv : nullptr; }, a.dv, vector_v, vs,
        vp);
    __syncthreads();
    if (kb >= warp_len) continue;  // these keys are past every row of the warp

    float s[kMmaKeys / 8][4];
    warp_product_abt<DK, kMmaKeys>(s, qf, ks, kp);

    float correction[2];  // l is each lane's part of its rows' sums: added across the 4 lanes at the end
    online_softmax_block<kMmaKeys>(s, kb, len, scale_log2, m, l, correction);
#pragma unroll
    for (int dt = 0; dt < DV / 8; ++dt) {
      o[dt][0] *= correction[0];
      o[dt][1] *= correction[0];
      o[dt][2] *= correction[1];
      o[dt][3] *= correction[1];
    }
    warp_product_pb<kMmaKeys, DV>(o, s, vs, vp);  // o += p . v, p still in registers
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = i == 0 ? r0 : r1;
    if (r >= rows) continue;
    float* row_out = out + row_offset(a, it, r) * a.dv;
    const float inv = 1.f / l[i];
#pragma unroll
    for (int dt = 0; dt < DV / 8; ++dt) {
      const int col = dt * 8 + 2 * c;
      if (col < a.dv) row_out[col] = o[dt][2 * i] * inv;
      if (col + 1 < a.dv) row_out[col + 1] = o[dt][2 * i + 1] * inv;
    }
  }
}

template <int DK, int DV>
void launch(moe_backend& b, const AttentionArgs& args, unsigned items, bool vq, bool vk, bool vv, float* out) {
  const size_t smem = ((kMmaRows + kMmaKeys) * (DK + 8) + kMmaKeys * (DV + 8)) * sizeof(__nv_bfloat16);
  allow_shared_memory(reinterpret_cast<const void*>(attention_forward_mma<DK, DV>), smem);
  attention_forward_mma<DK, DV><<<items, kMmaThreads, smem, b.stream>>>(args, out, vq, vk, vv);
  check_launch("attention_forward_mma");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool attention_forward_mma_fits(const moe_backend& b, int64_t dk, int64_t dv) {
  return b.f32_compute == CUBLAS_COMPUTE_32F_FAST_16BF && dk <= kAttentionMmaMaxHeadDim &&
         dv <= kAttentionMmaMaxHeadDim;
}

void attention_forward_mma(moe_backend& b, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                           const moe_tensor* slot, const moe_tensor* kv_len, const KvCacheShape& c, float scale,
                           float* out) {
  AttentionPlan plan = plan_attention(b, q, c, slot, kv_len, scale, kMmaRows);
  if (plan.items.empty()) return;
  // Longest items first: under a causal mask the last items of a sequence read the most keys, and
  // starting them first keeps the tail of the launch short.
  std::stable_sort(plan.items.begin(), plan.items.end(),
                   [](const AttentionItem& x, const AttentionItem& y) { return x.max_len > y.max_len; });
  const DeviceBuffer items = upload_vector(b, plan.items);
  const AttentionArgs args = attention_args(q, k_cache, v_cache, kv_len, c, scale, items.as<AttentionItem>());
  const bool vq = c.dk % 4 == 0 && aligned16(q->data);
  const bool vk = c.dk % 4 == 0 && aligned16(k_cache->data);
  const bool vv = c.dv % 4 == 0 && aligned16(v_cache->data);
  const unsigned count = static_cast<unsigned>(plan.items.size());
  const int dk = padded16(static_cast<int>(c.dk)), dv = padded16(static_cast<int>(c.dv));
  if (dk <= 64 && dv <= 64)
    launch<64, 64>(b, args, count, vq, vk, vv, out);
  else
    launch<128, 128>(b, args, count, vq, vk, vv, out);
}

}  // namespace moe_cuda
