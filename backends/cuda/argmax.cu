// argmax_rows: the index of each row's largest value (greedy decoding's next token), one block per
// row. Launched through launch_pdl with launch geometry from the shapes only, so it records like any
// math op (no host wait, nothing read back).
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "pdl_launch.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

constexpr int kMaxArgmaxThreads = 1024;

// Whether candidate (value, index) beats the current best: index < 0 means "no value yet" (only NaN
// seen), which anything beats; otherwise the larger value, the lower index on ties. Values held with
// an index >= 0 are never NaN.
__device__ __forceinline__ bool beats(float value, int index, float best, int best_index) {
  if (index < 0) return false;
  if (best_index < 0) return true;
  return value > best || (value == best && index < best_index);
}

__device__ __forceinline__ void warp_argmax(float& best, int& best_index) {
  for (int o = 16; o > 0; o >>= 1) {
    const float value = __shfl_xor_sync(0xffffffffu, best, o);
    const int index = __shfl_xor_sync(0xffffffffu, best_index, o);
    if (beats(value, index, best, best_index)) {
      best = value;
      best_index = index;
    }
  }
}

// Each thread scans the columns threadIdx.x, threadIdx.x + blockDim.x, ... in increasing order, so a
// strict > keeps its first index of its largest value; the warp and block reductions then break ties
// by the lower index. blockDim.x is a multiple of 32, at most 1024.
__global__ void argmax_rows_kernel(const float* x, int64_t n, int32_t* out) {
  __shared__ float warp_best[32];
  __shared__ int warp_index[32];
  pdl_wait_and_release();
  const float* row = x + static_cast<int64_t>(blockIdx.x) * n;
  float best = 0.f;
  int best_index = -1;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float v = row[j];
    // NaN fails both tests: it is never taken.
    if (v > best || (best_index < 0 && v == v)) {
      best = v;
      best_index = static_cast<int>(j);
    }
  }
  warp_argmax(best, best_index);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  if (lane == 0) {
    warp_best[warp] = best;
    warp_index[warp] = best_index;
  }
  __syncthreads();
  if (warp != 0) return;
  best = lane < warps ? warp_best[lane] : 0.f;
  best_index = lane < warps ? warp_index[lane] : -1;
  warp_argmax(best, best_index);
  if (lane == 0) out[blockIdx.x] = best_index < 0 ? 0 : best_index;  // a row of only NaN gives 0
}

}  // namespace

moe_status cuda_argmax_rows(moe_backend* be, const moe_tensor* x, moe_tensor* out) {
  return guarded(be, [&](moe_backend& b) {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], n = x->shape[1];
    if (n < 1) invalid("x " + shape_string(*x) + " has rows of no values: each row needs at least one");
    if (n > INT32_MAX) invalid("x " + shape_string(*x) + " has rows longer than an i32 index can name (2^31 - 1)");
    if (check_tensor(out, "out", MOE_DTYPE_I32, 1) != rows)
      invalid("out " + shape_string(*out) + " must have one element per row of x " + shape_string(*x));
    if (rows == 0) return;
    if (rows > INT32_MAX) fail(MOE_ERR_UNSUPPORTED, "argmax_rows over more than 2^31 - 1 rows is not supported");
    // Short rows get one warp per 32 values, long ones the most threads a block has (more loads in flight
    // on the one multiprocessor a decode step's single row runs on).
    const int threads = static_cast<int>(std::min<int64_t>(kMaxArgmaxThreads, (n + 31) / 32 * 32));
    launch_pdl(b, "argmax_rows", argmax_rows_kernel, static_cast<unsigned>(rows), threads, 0, data_of<const float>(x),
               n, data_of<int32_t>(out));
  });
}

}  // namespace moe_cuda
