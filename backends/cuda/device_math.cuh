// Device helpers shared by the kernels: launch shapes, f32/bf16 element access, warp and block sums,
// and the gated activations with their derivatives.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
inline unsigned int grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));
}

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Element i of an f32 or bf16 array.
__device__ __forceinline__ float float_at(const void* data, bool is_bf16, int64_t i) {
  return is_bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]) : static_cast<const float*>(data)[i];
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// A softmax's numerators in place, by the lanes of one warp: p[j] = exp(p[j] - m) for j < n, with m the
// maximum of the old values; every lane gets m and the sum l of the new values.
__device__ __forceinline__ void warp_exp_shifted(float* p, int n, float& m, float& l) {
  const int lane = threadIdx.x % 32;
  m = -INFINITY;
  for (int j = lane; j < n; j += 32) m = fmaxf(m, p[j]);
  m = warp_max(m);
  l = 0.f;
  for (int j = lane; j < n; j += 32) {
    const float e = expf(p[j] - m);
    p[j] = e;
    l += e;
  }
  l = warp_sum(l);
}

// The sum of every thread's v over a block of up to 1024 threads (a multiple of 32); every thread gets
// it. `scratch` holds 32 values; the call ends with a barrier, so it can be called again at once.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = scratch[0];
  for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
  __syncthreads();
  return m;
}

// act(g) and act'(g) of MOE_ACT_SILU (g * sigmoid(g)) and MOE_ACT_GELU_TANH, as the CPU backend computes
// them; exp(-g) overflowing to infinity for very negative g gives sigmoid 0, not NaN.
__device__ __forceinline__ float activation(float g, int32_t act) {
  if (act == MOE_ACT_GELU_TANH) {
    const float t = tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g));
    return 0.5f * g * (1.f + t);
  }
  return g * (1.f / (1.f + expf(-g)));
}

__device__ __forceinline__ float activation_derivative(float g, int32_t act) {
  if (act == MOE_ACT_GELU_TANH) {
    constexpr float kC = 0.7978845608028654f, kA = 0.044715f;
    const float t = tanhf(kC * (g + kA * g * g * g));
    return 0.5f * (1.f + t) + 0.5f * g * (1.f - t * t) * kC * (1.f + 3.f * kA * g * g);
  }
  const float s = 1.f / (1.f + expf(-g));
  return s * (1.f + g * (1.f - s));
}

}  // namespace moe_cuda
