// One output of small_m_gemm (small_m_gemm.cu), for a kernel that computes a product's few outputs itself and
// must give small_m_gemm's bits: the same dot_rows and warp_sum, in the same order.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "device_math.cuh"
#include "row_dots.cuh"

namespace moe_cuda {

// The warp's sum of the f32 row a (k elements) times the weight row w, where small_m_gemm_applies holds for
// the product (16-byte aligned rows, k a multiple of 8); bf16 weights see the row rounded to bf16, as
// small_m_gemm rounds it. Every lane gets the sum; small_m_gemm then stores alpha * sum (+ beta * c).
template <typename W>
__device__ __forceinline__ float small_m_dot(const W* w, const float* a, int64_t k) {
  float acc[kPassRows] = {};
  dot_rows<W, true, std::is_same_v<W, __nv_bfloat16>>(w, a, k, k, 1, acc);
  return warp_sum(acc[0]);
}

}  // namespace moe_cuda
