// What the attention kernels (forward and backward) share: their arguments, the loads of an item's query
// rows and of a key block into shared memory, and row addressing.
#pragma once

#include <cstdint>

#include "attention_plan.h"
#include "device_math.cuh"
#include "errors.h"

namespace moe_cuda {

constexpr int kAttentionThreads = 128;
constexpr int kRowsPerWarp = kItemRows / (kAttentionThreads / 32);
constexpr int kMaxChunks = kMaxHeadDim / 32;  // output columns per lane

struct AttentionArgs {
  const float* q;  // [tokens, heads, dk]
  const float* k_cache;
  const float* v_cache;
  const int32_t* kv_len;
  const AttentionItem* items;
  int64_t heads, kv_heads, capacity;
  int dk, dv;
  float scale;
};

inline AttentionArgs attention_args(const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                                    const moe_tensor* kv_len, const KvCacheShape& c, float scale,
                                    const AttentionItem* items) {
  return AttentionArgs{static_cast<const float*>(q->data),
                       static_cast<const float*>(k_cache->data),
                       static_cast<const float*>(v_cache->data),
                       static_cast<const int32_t*>(kv_len->data),
                       items,
                       q->shape[1],
                       c.kv_heads,
                       c.capacity,
                       static_cast<int>(c.dk),
                       static_cast<int>(c.dv),
                       scale};
}

// Kernels that take more than 48 KB of dynamic shared memory must say so first.
inline void allow_shared_memory(const void* kernel, size_t bytes) {
  if (bytes > (48 << 10))
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
               "raising a kernel's shared memory limit");
}

// The first cache row (position 0) of the item's slot and kv head.
__device__ __forceinline__ int64_t cache_row(const AttentionArgs& a, const AttentionItem& it) {
  return (int64_t{it.slot} * a.kv_heads + it.kv_head) * a.capacity;
}

// Row `row` of an item as a (token, head) row of q, out and their gradients.
__device__ __forceinline__ int64_t row_offset(const AttentionArgs& a, const AttentionItem& it, int row) {
  return int64_t{it.first_token + row / it.heads} * a.heads + it.first_head + row % it.heads;
}

// dst[r * width + d] = the item's row r of src ([tokens, heads, width]), for its rows.
__device__ __forceinline__ void load_item_rows(const float* src, const AttentionArgs& a, const AttentionItem& it,
                                               int width, float* dst) {
  const int n = it.tokens * it.heads * width;
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[row_offset(a, it, i / width) * width + i % width];
}

// Keys (or values) [kb, kb + nk) of a cache row block of `width` floats each, into rows of `pitch` floats.
__device__ __forceinline__ void load_key_block(const float* rows, int kb, int nk, int width, int pitch, float* dst) {
  for (int i = threadIdx.x; i < nk * width; i += blockDim.x)
    dst[(i / width) * pitch + i % width] = rows[int64_t{kb} * width + i];
}

}  // namespace moe_cuda
