#include "moe_permute_device.h"

#include <string>

#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "permute_block.cuh"
#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

constexpr size_t kMaxSharedBytes = 48 * 1024;

// counts: [experts + 1] buckets in shared memory; bucket `experts` takes the rows with a bad id.
__global__ void __launch_bounds__(kSortThreads)
    permute_one_block(const float* x, const int32_t* ids, int64_t tokens, int top_k, int experts, int64_t dim,
                      float* x_sorted, int64_t* offsets, int32_t* source, IndexError* errors) {
  extern __shared__ int counts[];
  __shared__ int scan[kSortThreads];
  __shared__ int chunk[kSortThreads];
  pdl_wait_and_release();
  permute_in_block(x, ids, tokens, top_k, experts, dim, x_sorted, offsets, source, errors, counts, scan, chunk);
}

constexpr int kCombineColumns = 4;  // output columns per thread

__global__ void __launch_bounds__(kThreads)
    unpermute_rows(const float* y, const int32_t* source, const float* w, int64_t tokens, int top_k, int64_t dim,
                   bool accumulate, float* out, IndexError* errors) {
  extern __shared__ int row_of[];
  pdl_wait_and_release();
  const int rows = static_cast<int>(tokens * top_k);
  for (int f = threadIdx.x; f < rows; f += blockDim.x) row_of[f] = -1;
  __syncthreads();
  IndexError* e = blockIdx.x == 0 && blockIdx.y == 0 ? errors : nullptr;  // one block reports
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const int f = source[r];
    if (!index_ok(e, IndexCheck::kUnpermuteSource, r, -1, f, 0, rows - 1)) continue;
    if (atomicCAS(&row_of[f], -1, r) != -1 && e) report_bad_index(e, IndexCheck::kUnpermuteSourceTwice, r, -1, f, 0, rows - 1);
  }
  __syncthreads();
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x)
    for (int64_t c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x; c < dim; c += int64_t{gridDim.y} * blockDim.x) {
      float sum = accumulate ? out[t * dim + c] : 0.f;
      for (int j = 0; j < top_k; ++j) {
        const int r = row_of[t * top_k + j];
        if (r >= 0) sum += w[t * top_k + j] * y[int64_t{r} * dim + c];
      }
      out[t * dim + c] = sum;
    }
}

}  // namespace

void permute_on_device(moe_backend& be, const float* x, const int32_t* ids, int64_t tokens, int64_t top_k,
                       int32_t experts, int64_t dim, float* x_sorted, int64_t* offsets, int32_t* source) {
  const size_t smem = static_cast<size_t>(experts + 1) * sizeof(int);
  if (smem > kMaxSharedBytes)
    fail(MOE_ERR_UNSUPPORTED, "recording moe_permute over " + std::to_string(experts) + " experts (at most " +
                                  std::to_string(kMaxSharedBytes / sizeof(int) - 1) + ")");
  if (top_k > INT32_MAX) invalid("top_k does not fit 32 bits");
  launch_pdl(be, "permute_one_block", permute_one_block, 1, kSortThreads, smem, x, ids, tokens, static_cast<int>(top_k),
             experts, dim, x_sorted, offsets, source, device_index_errors(be));
}

void unpermute_on_device(moe_backend& be, const float* y_sorted, const int32_t* source, const float* weights,
                         int64_t tokens, int64_t top_k, int64_t dim, bool accumulate, float* out) {
  const int64_t rows = tokens * top_k;
  const size_t smem = static_cast<size_t>(rows) * sizeof(int);
  if (smem > kMaxSharedBytes)
    fail(MOE_ERR_UNSUPPORTED, "recording moe_unpermute over tokens * top_k = " + std::to_string(rows) +
                                  " rows (at most " + std::to_string(kMaxSharedBytes / sizeof(int)) +
                                  "; a recorded step is meant for decode)");
  if (tokens == 0 || dim == 0) return;
  const int64_t column_blocks = (dim + kThreads * kCombineColumns - 1) / (kThreads * kCombineColumns);
  const dim3 grid(static_cast<unsigned>(tokens < 1024 ? tokens : 1024),
                  static_cast<unsigned>(column_blocks < 65535 ? column_blocks : 65535));
  launch_pdl(be, "unpermute_rows", unpermute_rows, grid, kThreads, smem, y_sorted, source, weights, tokens,
             static_cast<int>(top_k), dim, accumulate, out, device_index_errors(be));
}

}  // namespace moe_cuda
