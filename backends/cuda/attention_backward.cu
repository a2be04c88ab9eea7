// attention_backward, over the same work items as the forward pass. For a row (token, head) with
// probabilities p over keys j < kv_len (recomputed from q and the cache: a first pass over the keys finds
// the row's maximum and sum) and D = dout . out:
//   ds_j = scale * p_j * (dout . v_j - D);  dq = sum_j ds_j k_j;  dk_j += ds_j q;  dv_j += p_j dout.
// Per key block, each warp computes p and ds of its rows (lane j: key j) and accumulates dq in registers;
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

// q . k_j * scale for lane j of a key block (ks rows padded to dk + 1), or -infinity past the row's end.
__device__ __forceinline__ float score(const float* qr, const float* ks, int dk, int lane, int kb, int nk, int len,
                                       float scale) {
  if (lane >= nk || kb + lane >= len) return -INFINITY;
  float dot = 0.f;
  for (int d = 0; d < dk; ++d) dot += qr[d] * ks[lane * (dk + 1) + d];
  return dot * scale;
}

__global__ void __launch_bounds__(kAttentionThreads) attention_backward_kernel(AttentionArgs a, BackwardArgs g) {
  extern __shared__ float smem[];
  const AttentionItem it = a.items[blockIdx.x];
  const int dk = a.dk, dv = a.dv, rows = it.tokens * it.heads;
  float* qs = smem;                          // [kItemRows][dk]
  float* dos = qs + kItemRows * dk;          // [kItemRows][dv]
  float* ks = dos + kItemRows * dv;          // [kKeyBlock][dk + 1]
  float* vs = ks + kKeyBlock * (dk + 1);     // [kKeyBlock][dv + 1]
  float* ps = vs + kKeyBlock * (dv + 1);     // [kItemRows][kKeyBlock]
  float* dss = ps + kItemRows * kKeyBlock;   // [kItemRows][kKeyBlock]
  load_item_rows(a.q, a, it, dk, qs);
  load_item_rows(g.dout, a, it, dv, dos);
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float* k_rows = a.k_cache + cache_row(a, it) * dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * dv;
  int len[kRowsPerWarp];
  float m[kRowsPerWarp], l[kRowsPerWarp], d_row[kRowsPerWarp], dq[kRowsPerWarp][kMaxChunks];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    len[r] = row < rows ? a.kv_len[it.first_token + row / it.heads] : 0;
    m[r] = -INFINITY;
    l[r] = 0.f;
    float dot = 0.f;
    if (row < rows) {
      const float* o = g.out + row_offset(a, it, row) * dv;
      for (int e = lane; e < dv; e += 32) dot += dos[row * dv + e] * o[e];
    }
    d_row[r] = warp_sum(dot);
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) dq[r][c] = 0.f;
  }

  // Pass 1: each row's maximum score and sum of exponentials.
  for (int kb = 0; kb < it.max_len; kb += kKeyBlock) {
    const int nk = min(kKeyBlock, it.max_len - kb);
    __syncthreads();
    load_key_block(k_rows, kb, nk, dk, dk + 1, ks);
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (len[r] <= kb) continue;
      const float s = score(qs + (warp * kRowsPerWarp + r) * dk, ks, dk, lane, kb, nk, len[r], a.scale);
      const float m_new = fmaxf(m[r], warp_max(s));
      const float p = s == -INFINITY ? 0.f : expf(s - m_new);
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
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      float p = 0.f, ds = 0.f;
      if (len[r] > kb) {
        const float s = score(qs + row * dk, ks, dk, lane, kb, nk, len[r], a.scale);
        if (s != -INFINITY) {
          p = expf(s - m[r]) / l[r];
          float dp = 0.f;
          for (int e = 0; e < dv; ++e) dp += dos[row * dv + e] * vs[lane * (dv + 1) + e];
          ds = p * (dp - d_row[r]) * a.scale;
        }
        for (int j = 0; j < nk; ++j) {
          const float dsj = __shfl_sync(0xffffffffu, ds, j);
          if (dsj == 0.f) continue;
#pragma unroll
          for (int c = 0; c < kMaxChunks; ++c)
            if (lane + 32 * c < dk) dq[r][c] += dsj * ks[j * (dk + 1) + lane + 32 * c];
        }
      }
      ps[row * kKeyBlock + lane] = p;
      dss[row * kKeyBlock + lane] = ds;
    }
    __syncthreads();
    float* dk_rows = g.dk_partial + (g.item_rows[blockIdx.x] + kb) * dk;
    float* dv_rows = g.dv_partial + (g.item_rows[blockIdx.x] + kb) * dv;
    for (int i = threadIdx.x; i < nk * dk; i += blockDim.x) {
      const int j = i / dk, d = i % dk;
      float sum = 0.f;
      for (int r = 0; r < rows; ++r) sum += dss[r * kKeyBlock + j] * qs[r * dk + d];
      dk_rows[i] = sum;
    }
    for (int i = threadIdx.x; i < nk * dv; i += blockDim.x) {
      const int j = i / dv, e = i % dv;
      float sum = 0.f;
      for (int r = 0; r < rows; ++r) sum += ps[r * kKeyBlock + j] * dos[r * dv + e];
      dv_rows[i] = sum;
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows) continue;
    float* dqr = g.dq + row_offset(a, it, row) * dk;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c)
      if (lane + 32 * c < dk) dqr[lane + 32 * c] = dq[r][c];
  }
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
    const size_t smem = (kItemRows * (c.dk + c.dv) + kKeyBlock * (c.dk + 1 + c.dv + 1) + 2 * kItemRows * kKeyBlock) *
                        sizeof(float);
    allow_shared_memory(reinterpret_cast<const void*>(attention_backward_kernel), smem);
    attention_backward_kernel<<<static_cast<unsigned>(count), kAttentionThreads, smem, b.stream>>>(args, grads);
    check_launch("attention_backward_kernel");
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
