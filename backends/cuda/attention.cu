// attention: scaled dot-product attention of packed query tokens against a KV cache, flash style: each
// block walks the keys of one work item (attention_plan.h) in blocks of 32, keeps every row's running
// maximum, sum and output in registers (an online softmax), and never writes the scores to memory.
//
// In a block of 4 warps, each warp owns 4 rows. For a key block, lane j computes the scores of key j
// against all the warp's rows at once (keys padded by one float in shared memory, so the 32 lanes read 32
// banks; each key element read serves 4 rows); for the weighted sum of values each lane owns the output
// columns lane, lane + 32, ... and each value element read serves the 4 rows too. The arithmetic is f32
// throughout, as the op table asks. While a step is recorded, and for head dims above kMaxHeadDim,
// attention_decode.h runs instead; under MOE_CUDA_F32_MATH=bf16, attention_forward_mma.h.
#include <string>

#include "attention_decode.h"
#include "attention_forward_mma.h"
#include "attention_kernels.cuh"
#include "attention_plan.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "index_checks.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

template <int Chunks>
__global__ void __launch_bounds__(kAttentionThreads) attention_forward(AttentionArgs a, float* out) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const AttentionItem it = a.items[blockIdx.x];
  const int dk = a.dk, dv = a.dv, qp = row_pitch(dk), rows = it.tokens * it.heads;
  float* qs = smem;                        // [kItemRows][qp]
  float* ks = qs + kItemRows * qp;         // [kKeyBlock][dk + 1]
  float* vs = ks + kKeyBlock * (dk + 1);   // [kKeyBlock][dv]
  load_item_rows(a.q, a, it, dk, qp, qs);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float* qw = qs + warp * kRowsPerWarp * qp;
  int len[kRowsPerWarp], warp_len = 0;
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][Chunks];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    len[r] = row < rows ? a.kv_len[it.first_token + row / it.heads] : 0;
    warp_len = max(warp_len, len[r]);
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < Chunks; ++c) acc[r][c] = 0.f;
  }
  const float* k_rows = a.k_cache + cache_row(a, it) * dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * dv;

  for (int kb = 0; kb < it.max_len; kb += kKeyBlock) {
    const int nk = min(kKeyBlock, it.max_len - kb);
    __syncthreads();  // every warp is done with the previous key block (and the q rows are loaded)
    load_key_block(k_rows, kb, nk, dk, dk + 1, ks);
    load_key_block(v_rows, kb, nk, dv, dv, vs);
    __syncthreads();
    if (warp_len <= kb) continue;  // these keys are all past the ends of the warp's rows
    float s[kRowsPerWarp], p[kRowsPerWarp];
    warp_row_dots(qw, qp, ks, dk, lane, s);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      p[r] = 0.f;
      if (len[r] <= kb) continue;  // the same for the whole warp
      const bool inside = lane < nk && kb + lane < len[r];
      const float sr = inside ? s[r] * a.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(sr));  // finite: key kb is inside the row
      const float correction = expf(m[r] - m_new);
      p[r] = inside ? expf(sr - m_new) : 0.f;
      l[r] = l[r] * correction + warp_sum(p[r]);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < Chunks; ++c) acc[r][c] *= correction;
    }
    // The weighted sum of values: each value element is read once for the warp's rows.
    for (int j = 0; j < nk; ++j) {
      float vj[Chunks];
#pragma unroll
      for (int c = 0; c < Chunks; ++c) vj[c] = lane + 32 * c < dv ? vs[j * dv + lane + 32 * c] : 0.f;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float pj = __shfl_sync(0xffffffffu, p[r], j);
        if (pj == 0.f) continue;  // a masked key (its value row may hold anything) or an underflow
#pragma unroll
        for (int c = 0; c < Chunks; ++c) acc[r][c] += pj * vj[c];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    float* o = out + row_offset(a, it, row) * dv;
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
      if (lane + 32 * c < dv) o[lane + 32 * c] = acc[r][c] / l[r];
  }
}

template <int Chunks>
void launch_attention_forward(moe_backend& b, const AttentionArgs& args, unsigned items, size_t smem, float* out) {
  allow_shared_memory(reinterpret_cast<const void*>(attention_forward<Chunks>), smem);
  attention_forward<Chunks><<<items, kAttentionThreads, smem, b.stream>>>(args, out);
  check_launch("attention_forward");
}

}  // namespace

moe_status cuda_attention(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                          const moe_tensor* slot, const moe_tensor* kv_len, float scale, moe_tensor* out) {
  return guarded(be, [&](moe_backend& b) {
    const KvCacheShape c = check_kv_caches(k_cache, v_cache);
    check_tensor(out, "out", MOE_DTYPE_F32, 3);
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    if (out->shape[0] != q->shape[0] || out->shape[1] != q->shape[1] || out->shape[2] != c.dv)
      invalid("out " + shape_string(*out) + " must be [tokens, heads, dv] for q " + shape_string(*q) +
              " and the caches " + shape_string(*k_cache) + ", " + shape_string(*v_cache));
    // Recording (no host plan), or head dims beyond the flash kernel's (MLA's latent cache): flash decoding.
    if (recording(b) || c.dk > kMaxHeadDim || c.dv > kMaxHeadDim) {
      check_attention_shapes(q, c, scale, kMaxDecodeHeadDim);
      if (!recording(b)) {
        token_indices(b, slot, "slot", q->shape[0], 0, c.slots - 1);
        token_indices(b, kv_len, "kv_len", q->shape[0], 1, c.capacity);
      }
      attention_decode(b, q, k_cache, v_cache, c, slot, kv_len, scale, out, recording(b));
      return;
    }
    if (attention_forward_mma_fits(b, c.dk, c.dv)) {
      attention_forward_mma(b, q, k_cache, v_cache, slot, kv_len, c, scale, data_of<float>(out));
      return;
    }
    const AttentionPlan plan = plan_attention(b, q, c, slot, kv_len, scale);
    if (plan.items.empty()) return;
    const DeviceBuffer items = upload_vector(b, plan.items);
    const AttentionArgs args = attention_args(q, k_cache, v_cache, kv_len, c, scale, items.as<AttentionItem>());
    const size_t smem = (kItemRows * row_pitch(c.dk) + kKeyBlock * (c.dk + 1) + kKeyBlock * c.dv) * sizeof(float);
    const unsigned count = static_cast<unsigned>(plan.items.size());
    switch (chunks_for(c.dv)) {
      case 2: launch_attention_forward<2>(b, args, count, smem, data_of<float>(out)); break;
      case 4: launch_attention_forward<4>(b, args, count, smem, data_of<float>(out)); break;
      default: launch_attention_forward<8>(b, args, count, smem, data_of<float>(out)); break;
    }
  });
}

}  // namespace moe_cuda
