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

// Kernels are instantiated for 2, 4 or 8 column chunks of 32 per lane (head dims up to 64, 128, 256), so
// that their per-lane accumulators are exactly as many registers as the head dim needs.
inline int chunks_for(int64_t width) { return width <= 64 ? 2 : width <= 128 ? 4 : 8; }

// Shared-memory rows of the items' q (and dout) rows: a multiple of 4 floats, so they are read as float4.
__host__ __device__ inline int row_pitch(int64_t width) { return static_cast<int>((width + 3) / 4 * 4); }

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

// dst[r * pitch + d] = the item's row r of src ([tokens, heads, width]) for all kItemRows rows, zero past
// the item's rows and past width (the padding), so that every value the kernels read was written.
__device__ __forceinline__ void load_item_rows(const float* src, const AttentionArgs& a, const AttentionItem& it,
                                               int width, int pitch, float* dst) {
  const int rows = it.tokens * it.heads;
  for (int i = threadIdx.x; i < kItemRows * pitch; i += blockDim.x) {
    const int r = i / pitch, d = i % pitch;
    dst[i] = r < rows && d < width ? src[row_offset(a, it, r) * width + d] : 0.f;
  }
}

// s[r] = the dot product of row r of the warp's rows (rows: kRowsPerWarp rows of `pitch` floats, 16-byte
// aligned, read as float4 broadcasts) with row `lane` of keys (rows of width + 1 floats: the 32 lanes
// read 32 banks). Each key element is read once for all the warp's rows: shared-memory reads, not
// arithmetic, bound these loops.
__device__ __forceinline__ void warp_row_dots(const float* rows, int pitch, const float* keys, int width, int lane,
                                              float (&s)[kRowsPerWarp]) {
  const float* kr = keys + lane * (width + 1);
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.f;
  int d = 0;
  for (; d + 4 <= width; d += 4) {
    const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2], k3 = kr[d + 3];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float4 q = *reinterpret_cast<const float4*>(rows + r * pitch + d);
      s[r] += q.x * k0;
      s[r] += q.y * k1;
      s[r] += q.z * k2;
      s[r] += q.w * k3;
    }
  }
  for (; d < width; ++d) {
    const float k = kr[d];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] += rows[r * pitch + d] * k;
  }
}

// Keys (or values) [kb, kb + nk) of a cache row block of `width` floats each, into rows of `pitch` floats.
__device__ __forceinline__ void load_key_block(const float* rows, int kb, int nk, int width, int pitch, float* dst) {
  for (int i = threadIdx.x; i < nk * width; i += blockDim.x)
    dst[(i / width) * pitch + i % width] = rows[int64_t{kb} * width + i];
}

}  // namespace moe_cuda
