// Dot products of a few f32 rows against one weight row, for the kernels of small products (decode):
// one warp per weight row, each lane taking every 32nd group of 8 elements, so that a weight row is read
// once for up to kPassRows input rows, in 16-byte loads where the shapes allow. The caller sums the lanes'
// partial sums over the warp (warp_sum).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "device_math.cuh"
#include "rmsnorm_device.cuh"

namespace moe_cuda {

constexpr int kPassRows = 4;  // input rows per read of a weight row

__device__ __forceinline__ void load8(const __nv_bfloat16* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const float* p, float* out) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}

// The input value as the product sees it: itself, or rounded to bf16 (RoundIn, to compute exactly the
// bf16 x bf16 products that the cuBLAS path computes after converting the activations).
template <bool RoundIn>
__device__ __forceinline__ float operand(float v) {
  if constexpr (RoundIn) return __bfloat162float(__float2bfloat16_rn(v));
  return v;
}

// How dot_rows reads element i of its input row r (row points at the row): as stored (PlainRows), or
// through RMSNorm (NormedRows: the norm's output element, computed as the rmsnorm op computes it, from the
// row's rstd), so that a product can apply the norm ahead of it without the norm's output in memory.
struct PlainRows {
  __device__ __forceinline__ void load8(const float* row, int, int64_t i, float* out) const {
    moe_cuda::load8(row + i, out);
  }
  __device__ __forceinline__ float at(const float* row, int, int64_t i) const { return row[i]; }
};
struct NormedRows {
  const float* rstd;   // rstd[r] for the pass's rows
  const void* weight;  // the norm's weight, f32 or bf16
  bool bf16;
  __device__ __forceinline__ void load8(const float* row, int r, int64_t i, float* out) const {
    moe_cuda::load8(row + i, out);
#pragma unroll
    for (int q = 0; q < 8; ++q) out[q] = normed_value(out[q], rstd[r], weight, bf16, i + q);
  }
  __device__ __forceinline__ float at(const float* row, int r, int64_t i) const {
    return normed_value(row[i], rstd[r], weight, bf16, i);
  }
};

// acc[r] += in[r] . w for rows r < nr of `in` (f32, row stride ld) and the weight row w of k elements.
// Vec: 16-byte loads (k a multiple of 8, w and every input row 16-byte aligned).
template <typename W, bool Vec, bool RoundIn = false, typename Rows = PlainRows>
__device__ __forceinline__ void dot_rows(const W* w, const float* in, int64_t ld, int64_t k, int nr,
                                         float (&acc)[kPassRows], const Rows& rows = Rows{}) {
  const int lane = threadIdx.x % 32;
  if constexpr (Vec) {
#pragma unroll 4
    for (int64_t i = int64_t{lane} * 8; i < k; i += 32 * 8) {
      float wv[8];
      load8(w + i, wv);
#pragma unroll
      for (int r = 0; r < kPassRows; ++r) {
        if (r >= nr) break;
        float xv[8];
        rows.load8(in + r * ld, r, i, xv);
#pragma unroll
        for (int q = 0; q < 8; ++q) acc[r] += wv[q] * operand<RoundIn>(xv[q]);
      }
    }
  } else {
    for (int64_t i = lane; i < k; i += 32) {
      const float wv = to_float(w[i]);
#pragma unroll
      for (int r = 0; r < kPassRows; ++r)
        if (r < nr) acc[r] += wv * operand<RoundIn>(rows.at(in + r * ld, r, i));
    }
  }
}

// dot_rows for two weight rows at once (an expert's gate and up rows): acc_a[r] += in[r] . wa and acc_b[r] +=
// in[r] . wb, each accumulated in dot_rows' order (the same bits as two dot_rows calls), with both rows' loads
// of an element group issued together, so that a warp waits for memory once where two calls wait twice.
template <typename W, bool Vec>
__device__ __forceinline__ void dot_rows_pair(const W* wa, const W* wb, const float* in, int64_t ld, int64_t k, int nr,
                                              float (&acc_a)[kPassRows], float (&acc_b)[kPassRows]) {
  const int lane = threadIdx.x % 32;
  if constexpr (Vec) {
    // Two iterations in flight hold as many weight bytes as dot_rows' four, in the registers it has.
#pragma unroll 2
    for (int64_t i = int64_t{lane} * 8; i < k; i += 32 * 8) {
      float av[8], bv[8];
      load8(wa + i, av);
      load8(wb + i, bv);
#pragma unroll
      for (int r = 0; r < kPassRows; ++r) {
        if (r >= nr) break;
        float xv[8];
        load8(in + r * ld + i, xv);
#pragma unroll
        for (int q = 0; q < 8; ++q) {
          acc_a[r] += av[q] * xv[q];
          acc_b[r] += bv[q] * xv[q];
        }
      }
    }
  } else {
    for (int64_t i = lane; i < k; i += 32) {
      const float av = to_float(wa[i]), bv = to_float(wb[i]);
#pragma unroll
      for (int r = 0; r < kPassRows; ++r)
        if (r < nr) {
          acc_a[r] += av * in[r * ld + i];
          acc_b[r] += bv * in[r * ld + i];
        }
    }
  }
}

}  // namespace moe_cuda
