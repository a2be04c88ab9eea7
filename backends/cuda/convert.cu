#include "convert.h"
#include "device_math.cuh"

namespace moe_cuda {
namespace {

template <typename From, typename To>
__global__ void convert_rows(const From* src, int64_t src_ld, To* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dst_ld + c] = from_float<To>(to_float(src[r * src_ld + c]));
  }
}

__global__ void add_bf16_blocks_kernel(const __nv_bfloat16* src, int64_t src_ld, const int32_t* blocks,
                                       int64_t count, int64_t rows, int64_t cols, float* dst) {
  const int64_t per_block = rows * cols, n = count * per_block;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = i / per_block, within = i % per_block, r = within / cols, c = within % cols;
    dst[blocks[b] * per_block + within] += __bfloat162float(src[(b * rows + r) * src_ld + c]);
  }
}

}  // namespace

void f32_to_bf16(moe_backend& be, const float* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                 int64_t cols) {
  if (rows * cols == 0) return;
  convert_rows<<<grid_for(rows * cols), kThreads, 0, be.stream>>>(src, src_ld, static_cast<__nv_bfloat16*>(dst),
                                                                   dst_ld, rows, cols);
  check_launch("f32_to_bf16");
}

void bf16_to_f32(moe_backend& be, const void* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows,
                 int64_t cols) {
  if (rows * cols == 0) return;
  convert_rows<<<grid_for(rows * cols), kThreads, 0, be.stream>>>(static_cast<const __nv_bfloat16*>(src), src_ld, dst,
                                                                   dst_ld, rows, cols);
  check_launch("bf16_to_f32");
}

void add_bf16_blocks(moe_backend& be, const void* src, int64_t src_ld, const int32_t* blocks, int64_t count,
                     int64_t rows, int64_t cols, float* dst) {
  if (count * rows * cols == 0) return;
  add_bf16_blocks_kernel<<<grid_for(count * rows * cols), kThreads, 0, be.stream>>>(
      static_cast<const __nv_bfloat16*>(src), src_ld, blocks, count, rows, cols, dst);
  check_launch("add_bf16_blocks");
}

}  // namespace moe_cuda
