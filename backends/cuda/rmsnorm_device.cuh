// RMSNorm's per-row arithmetic, shared by the rmsnorm op (rmsnorm.cu) and the kernels that apply a norm to
// their input themselves (rmsnorm_linear.cu, route_and_permute.cu), which must give the op's bits: the same
// sum of squares over a block of kNormThreads threads, in the same order, and the same product per element.
#pragma once

#include <cstdint>

#include "device_math.cuh"

namespace moe_cuda {

constexpr int kNormThreads = 256;  // the block that sums a row's squares

// 1 / sqrt(mean(x^2) + eps) of the row x (width elements), for every thread of a block of kNormThreads
// threads, all of which must call it. The squares are summed in double, as the CPU backend sums them: in
// f32 a row of elements near 1e20 overflows to infinity and the row would silently normalise to zeros,
// hiding weights that have blown up (the trainer's non-finite loss check relies on seeing them).
// scratch: 32 doubles of shared memory.
__device__ __forceinline__ float row_rstd(const float* x, int64_t width, float eps, double* scratch) {
  double squares = 0;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x) squares += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(1.0 / sqrt(block_sum(squares, scratch) / static_cast<double>(width) + eps));
}

// Element j of the normed row: x_j * rstd * weight_j, multiplied in that order.
__device__ __forceinline__ float normed_value(float x_j, float rstd, const void* weight, bool bf16, int64_t j) {
  return x_j * rstd * float_at(weight, bf16, j);
}

}  // namespace moe_cuda
