// attention: scaled dot-product attention of packed query tokens against a KV cache, flash style: each
// block walks the keys of one work item (attention_plan.h) in blocks of 32, keeps every row's running
// maximum, sum and output in registers (an online softmax), and never writes the scores to memory.
//
// In a block of 4 warps, each warp owns 4 rows. For a key block, lane j computes the scores of key j
// against the warp's rows (keys padded by one float in shared memory, so the 32 lanes read 32 banks);
// for the weighted sum of values each lane owns the output columns lane, lane + 32, ... The arithmetic is
// f32 throughout, as the op table asks.
#include <string>

#include "attention_kernels.cuh"
#include "attention_plan.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

__global__ void __launch_bounds__(kAttentionThreads) attention_forward(AttentionArgs a, float* out) {
  extern __shared__ float smem[];
  const AttentionItem it = a.items[blockIdx.x];
  const int dk = a.dk, dv = a.dv, rows = it.tokens * it.heads;
  float* qs = smem;                        // [kItemRows][dk]
  float* ks = qs + kItemRows * dk;         // [kKeyBlock][dk + 1]
  float* vs = ks + kKeyBlock * (dk + 1);   // [kKeyBlock][dv]
  load_item_rows(a.q, a, it, dk, qs);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int len[kRowsPerWarp];
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxChunks];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    len[r] = row < rows ? a.kv_len[it.first_token + row / it.heads] : 0;
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) acc[r][c] = 0.f;
  }
  const float* k_rows = a.k_cache + cache_row(a, it) * dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * dv;

  for (int kb = 0; kb < it.max_len; kb += kKeyBlock) {
    const int nk = min(kKeyBlock, it.max_len - kb);
    __syncthreads();  // every warp is done with the previous key block (and the q rows are loaded)
    load_key_block(k_rows, kb, nk, dk, dk + 1, ks);
    load_key_block(v_rows, kb, nk, dv, dv, vs);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (len[r] <= kb) continue;  // the same for the whole warp: these keys are all past the row's end
      const float* qr = qs + (warp * kRowsPerWarp + r) * dk;
      float s = -INFINITY;
      if (lane < nk && kb + lane < len[r]) {
        float dot = 0.f;
        for (int d = 0; d < dk; ++d) dot += qr[d] * ks[lane * (dk + 1) + d];
        s = dot * a.scale;
      }
      const float m_new = fmaxf(m[r], warp_max(s));  // finite: key kb is inside the row
      const float correction = expf(m[r] - m_new);
      const float p = s == -INFINITY ? 0.f : expf(s - m_new);
      l[r] = l[r] * correction + warp_sum(p);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) acc[r][c] *= correction;
      for (int j = 0; j < nk; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        if (pj == 0.f) continue;  // a masked key (its value row may hold anything) or an underflow
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c)
          if (lane + 32 * c < dv) acc[r][c] += pj * vs[j * dv + lane + 32 * c];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    float* o = out + row_offset(a, it, row) * dv;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c)
      if (lane + 32 * c < dv) o[lane + 32 * c] = acc[r][c] / l[r];
  }
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
    const AttentionPlan plan = plan_attention(b, q, c, slot, kv_len, scale);
    if (plan.items.empty()) return;
    const DeviceBuffer items = upload_vector(b, plan.items);
    const AttentionArgs args = attention_args(q, k_cache, v_cache, kv_len, c, scale, items.as<AttentionItem>());
    const size_t smem = (kItemRows * c.dk + kKeyBlock * (c.dk + 1) + kKeyBlock * c.dv) * sizeof(float);
    allow_shared_memory(reinterpret_cast<const void*>(attention_forward), smem);
    attention_forward<<<static_cast<unsigned>(plan.items.size()), kAttentionThreads, smem, b.stream>>>(
        args, data_of<float>(out));
    check_launch("attention_forward");
  });
}

}  // namespace moe_cuda
