// attention_backward, over the same work items as the forward pass. For a row (token, head) with
// probabilities p over keys j < kv_len (recomputed from q and the cache: a first pass over the keys finds
// the row's maximum and sum) and D = dout . out:
//   ds_j = scale * p_j * (dout . v_j - D);  dq = sum_j ds_j k_j;  dk_j += ds_j q;  dv_j += p_j dout.
// Per key block, each warp computes p and ds of its rows (lane j: key j, against all the warp's rows at
// once, so that each shared-memory read of a key serves 4 rows) and accumulates dq in registers;
// then the block sums over its rows into dk and dv of the block's keys. Items of one slot and kv head
// share those keys, so each item writes its sums to rows of its own, and a second kernel adds them into
// the cache gradients in item order: no atomics, the same bits on every run (bit-exact training resume).
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "attention_kernels.cuh"
#include "attention_plan.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

struct BackwardArgs {
  const float* out;          // [tokens, heads, dv]
  const float* dout;         // [tokens, heads, dv]
  float* dq;                 // [tokens, heads, dk]
  float* dk_partial;         // [sum of the items' max_len, dk]: item i's keys from row item_rows[i]
  float* dv_partial;         // the same with dv
  const int64_t* item_rows;
};

// The items that touch one cache row block (a slot and kv head), for the reduction of their partials.
struct KeyGroup {
  int64_t cache_row;  // the block's first cache row
  int32_t reach;      // keys [0, reach) are written by some item
  int32_t first_item, end_item;  // its entries in the group item list
};

// cache_grad[group rows][d] += the group's items' partial rows, added in item order.
__global__ void add_item_partials(const KeyGroup* groups, const int32_t* group_items, const int64_t* item_rows,
                                  const int32_t* item_len, const float* partial, int width, float* cache_grad) {
  const KeyGroup g = groups[blockIdx.x];
  const int64_t n = int64_t{g.reach} * width;
  for (int64_t i = blockIdx.y * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.y} * blockDim.x) {
    const int64_t key = i / width;
    float sum = 0.f;
    for (int32_t k = g.first_item; k < g.end_item; ++k) {
      const int32_t item = group_items[k];
      if (key < item_len[item]) sum += partial[(item_rows[item] + key) * width + i % width];
    }
    cache_grad[g.cache_row * width + i] += sum;
  }
}

// dst[j][d] = sum over the item's rows r of w[r][j] * x[r][d], for keys j < nk and d < width: the block's
// share of dk (w = ds, x = q) or dv (w = p, x = dout). A thread takes a key and 4 columns (x's rows are
// padded to `pitch`, a multiple of 4, with zeros), adding the rows in order.
__device__ __forceinline__ void key_block_sums(const float* w, const float* x, int pitch, int rows, int nk, int width,
                                               float* dst) {
  const int quads = pitch / 4;
  for (int i = threadIdx.x; i < nk * quads; i += blockDim.x) {
    const int j = i / quads, d = i % quads * 4;
    float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int r = 0; r < rows; ++r) {
      const float wr = w[r * kKeyBlock + j];
      const float4 xr = *reinterpret_cast<const float4*>(x + r * pitch + d);
      sum.x += wr * xr.x;
      sum.y += wr * xr.y;
      sum.z += wr * xr.z;
      sum.w += wr * xr.w;
    }
    float* out = dst + j * width + d;
    if (d < width) out[0] = sum.x;
    if (d + 1 < width) out[1] = sum.y;
    if (d + 2 < width) out[2] = sum.z;
    if (d + 3 < width) out[3] = sum.w;
  }
}

template <int Chunks>
__global__ void __launch_bounds__(kAttentionThreads) attention_backward_kernel(AttentionArgs a, BackwardArgs g) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const AttentionItem it = a.items[blockIdx.x];
  const int dk = a.dk, dv = a.dv, qp = row_pitch(dk), op = row_pitch(dv), rows = it.tokens * it.heads;
  float* qs = smem;                          // [kItemRows][qp]
  float* dos = qs + kItemRows * qp;          // [kItemRows][op]
  float* ks = dos + kItemRows * op;          // [kKeyBlock][dk + 1]
  float* vs = ks + kKeyBlock * (dk + 1);     // [kKeyBlock][dv + 1]
  float* ps = vs + kKeyBlock * (dv + 1);     // [kItemRows][kKeyBlock]
  float* dss = ps + kItemRows * kKeyBlock;   // [kItemRows][kKeyBlock]
  load_item_rows(a.q, a, it, dk, qp, qs);
  load_item_rows(g.dout, a, it, dv, op, dos);
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float* qw = qs + warp * kRowsPerWarp * qp;
  const float* dow = dos + warp * kRowsPerWarp * op;
  const float* k_rows = a.k_cache + cache_row(a, it) * dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * dv;
  int len[kRowsPerWarp], warp_len = 0;
  float m[kRowsPerWarp], l[kRowsPerWarp], d_row[kRowsPerWarp], dq[kRowsPerWarp][Chunks];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    len[r] = row < rows ? a.kv_len[it.first_token + row / it.heads] : 0;
    warp_len = max(warp_len, len[r]);
    m[r] = -INFINITY;
    l[r] = 0.f;
    float dot = 0.f;
    if (row < rows) {
      const float* o = g.out + row_offset(a, it, row) * dv;
      for (int e = lane; e < dv; e += 32) dot += dos[row * op + e] * o[e];
    }
    d_row[r] = warp_sum(dot);
#pragma unroll
    for (int c = 0; c < Chunks; ++c) dq[r][c] = 0.f;
  }

  // Pass 1: each row's maximum score and sum of exponentials.
  for (int kb = 0; kb < it.max_len; kb += kKeyBlock) {
    const int nk = min(kKeyBlock, it.max_len - kb);
    __syncthreads();
    load_key_block(k_rows, kb, nk, dk, dk + 1, ks);
    __syncthreads();
    if (warp_len <= kb) continue;
    float s[kRowsPerWarp];
    warp_row_dots(qw, qp, ks, dk, lane, s);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (len[r] <= kb) continue;  // the same for the whole warp
      const float sr = lane < nk && kb + lane < len[r] ? s[r] * a.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(sr));
      const float p = sr == -INFINITY ? 0.f : expf(sr - m_new);
      l[r] = l[r] * expf(m[r] - m_new) + warp_sum(p);
      m[r] = m_new;
    }
  }

  // Pass 2: probabilities, score gradients, dq; then the key block's dk and dv.
  for (int kb = 0; kb < it.max_len; kb += kKeyBlock) {
    const int nk = min(kKeyBlock, it.max_len - kb);
    __syncthreads();
    load_key_block(k_rows, kb, nk, dk, dk + 1, ks);
    load_key_block(v_rows, kb, nk, dv, dv + 1, vs);
    __syncthreads();
    float p[kRowsPerWarp], ds[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) p[r] = ds[r] = 0.f;
    if (warp_len > kb) {
      float s[kRowsPerWarp], dp[kRowsPerWarp];
      warp_row_dots(qw, qp, ks, dk, lane, s);
      warp_row_dots(dow, op, vs, dv, lane, dp);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        if (lane < nk && kb + lane < len[r]) {
          p[r] = expf(s[r] * a.scale - m[r]) / l[r];
          ds[r] = p[r] * (dp[r] - d_row[r]) * a.scale;
        }
      }
      // dq: each key element is read once for the warp's rows.
      for (int j = 0; j < nk; ++j) {
        float kj[Chunks];
#pragma unroll
        for (int c = 0; c < Chunks; ++c) kj[c] = lane + 32 * c < dk ? ks[j * (dk + 1) + lane + 32 * c] : 0.f;
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
          const float dsj = __shfl_sync(0xffffffffu, ds[r], j);
          if (dsj == 0.f) continue;
#pragma unroll
          for (int c = 0; c < Chunks; ++c) dq[r][c] += dsj * kj[c];
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      ps[row * kKeyBlock + lane] = p[r];
      dss[row * kKeyBlock + lane] = ds[r];
    }
    __syncthreads();
    float* dk_rows = g.dk_partial + (g.item_rows[blockIdx.x] + kb) * dk;
    float* dv_rows = g.dv_partial + (g.item_rows[blockIdx.x] + kb) * dv;
    key_block_sums(dss, qs, qp, rows, nk, dk, dk_rows);
    key_block_sums(ps, dos, op, rows, nk, dv, dv_rows);
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    float* dqr = g.dq + row_offset(a, it, row) * dk;
#pragma unroll
    for (int c = 0; c < Chunks; ++c)
      if (lane + 32 * c < dk) dqr[lane + 32 * c] = dq[r][c];
  }
}

template <int Chunks>
void launch_attention_backward(moe_backend& b, const AttentionArgs& args, const BackwardArgs& grads, unsigned items,
                               size_t smem) {
  allow_shared_memory(reinterpret_cast<const void*>(attention_backward_kernel<Chunks>), smem);
  attention_backward_kernel<Chunks><<<items, kAttentionThreads, smem, b.stream>>>(args, grads);
  check_launch("attention_backward_kernel");
}

}  // namespace

moe_status cuda_attention_backward(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                   const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                   float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                   moe_tensor* dk_cache, moe_tensor* dv_cache) {
  return guarded(be, [&](moe_backend& b) {
    const KvCacheShape c = check_kv_caches(k_cache, v_cache);
    const KvCacheShape gc = check_kv_caches(dk_cache, dv_cache);
    if (gc.slots != c.slots || gc.kv_heads != c.kv_heads || gc.capacity != c.capacity || gc.dk != c.dk ||
        gc.dv != c.dv)
      invalid("dk_cache " + shape_string(*dk_cache) + " and dv_cache " + shape_string(*dv_cache) +
              " must have the caches' shapes " + shape_string(*k_cache) + ", " + shape_string(*v_cache));
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    const int64_t tokens = q->shape[0], heads = q->shape[1];
    for (auto [t, name, width] : {std::tuple{q, "q", c.dk}, std::tuple{static_cast<const moe_tensor*>(dq), "dq", c.dk},
                                  std::tuple{out, "out", c.dv}, std::tuple{dout, "dout", c.dv}}) {
      check_tensor(t, name, MOE_DTYPE_F32, 3);
      if (t->shape[0] != tokens || t->shape[1] != heads || t->shape[2] != width)
        invalid(std::string(name) + " " + shape_string(*t) + " must be [tokens = " + std::to_string(tokens) +
                ", heads = " + std::to_string(heads) + ", " + std::to_string(width) + "]");
    }
    const AttentionPlan plan = plan_attention(b, q, c, slot, kv_len, scale);
    if (plan.items.empty()) return;
    // Each item's partial rows, and the items of each (slot, kv head) in item order.
    const size_t count = plan.items.size();
    std::vector<int64_t> item_rows(count);
    std::vector<int32_t> item_len(count);
    std::map<int64_t, std::vector<int32_t>> items_of_block;
    int64_t partial_rows = 0;
    for (size_t i = 0; i < count; ++i) {
      const AttentionItem& it = plan.items[i];
      item_rows[i] = partial_rows;
      item_len[i] = it.max_len;
      partial_rows += it.max_len;
      items_of_block[(int64_t{it.slot} * c.kv_heads + it.kv_head) * c.capacity].push_back(static_cast<int32_t>(i));
    }
    std::vector<KeyGroup> groups;
    std::vector<int32_t> group_items;
    for (const auto& [row, list] : items_of_block) {
      KeyGroup g{row, 0, static_cast<int32_t>(group_items.size()), 0};
      for (int32_t i : list) g.reach = std::max(g.reach, item_len[i]);
      group_items.insert(group_items.end(), list.begin(), list.end());
      g.end_item = static_cast<int32_t>(group_items.size());
      groups.push_back(g);
    }
    const DeviceBuffer items = upload_vector(b, plan.items), d_item_rows = upload_vector(b, item_rows),
                       d_item_len = upload_vector(b, item_len), d_groups = upload_vector(b, groups),
                       d_group_items = upload_vector(b, group_items);
    DeviceBuffer dk_partial(b, static_cast<size_t>(partial_rows * c.dk) * sizeof(float));
    DeviceBuffer dv_partial(b, static_cast<size_t>(partial_rows * c.dv) * sizeof(float));
    const AttentionArgs args = attention_args(q, k_cache, v_cache, kv_len, c, scale, items.as<AttentionItem>());
    const BackwardArgs grads{data_of<const float>(out), data_of<const float>(dout), data_of<float>(dq),
                             dk_partial.as<float>(), dv_partial.as<float>(), d_item_rows.as<const int64_t>()};
    const size_t smem = (kItemRows * (row_pitch(c.dk) + row_pitch(c.dv)) + kKeyBlock * (c.dk + 1 + c.dv + 1) +
                         2 * kItemRows * kKeyBlock) *
                        sizeof(float);
    switch (chunks_for(c.dk)) {
      case 2: launch_attention_backward<2>(b, args, grads, static_cast<unsigned>(count), smem); break;
      case 4: launch_attention_backward<4>(b, args, grads, static_cast<unsigned>(count), smem); break;
      default: launch_attention_backward<8>(b, args, grads, static_cast<unsigned>(count), smem); break;
    }
    for (auto [partial, grad, width] : {std::tuple{&dk_partial, dk_cache, c.dk}, std::tuple{&dv_partial, dv_cache, c.dv}}) {
      if (width == 0) continue;
      const dim3 grid(static_cast<unsigned>(groups.size()), 16);
      add_item_partials<<<grid, kThreads, 0, b.stream>>>(d_groups.as<const KeyGroup>(), d_group_items.as<const int32_t>(),
                                                          d_item_rows.as<const int64_t>(), d_item_len.as<const int32_t>(),
                                                          partial->as<const float>(), static_cast<int>(width),
                                                          static_cast<float*>(grad->data));
      check_launch("add_item_partials");
    }
  });
}

}  // namespace moe_cuda
