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

// f32 -> bf16 four elements at a time (16-byte loads, 8-byte stores), for rows whose length and strides
// are multiples of 4 on 16-byte aligned data: the rounding of a product's f32 operands (gemm.cu) is a pure
// copy at memory speed, and the element-wise kernel above spends more on its index arithmetic than on
// its loads. Rows of up to 2^31 - 1 groups (callers check), so that a 32-bit row length divides.
__global__ void f32_to_bf16_by_4(const float4* src, int64_t src_ld4, uint2* dst, int64_t dst_ld4, int64_t rows,
                                 unsigned cols4) {
  const int64_t n = rows * cols4;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols4, c = i - r * cols4;
    const float4 v = src[r * src_ld4 + c];
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const unsigned*>(&lo);
    packed.y = *reinterpret_cast<const unsigned*>(&hi);
    dst[r * dst_ld4 + c] = packed;
  }
}

bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

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
  if (cols % 4 == 0 && src_ld % 4 == 0 && dst_ld % 4 == 0 && cols / 4 <= INT32_MAX && aligned_to(src, 16) &&
      aligned_to(dst, 8)) {
    f32_to_bf16_by_4<<<grid_for(rows * cols / 4), kThreads, 0, be.stream>>>(
        reinterpret_cast<const float4*>(src), src_ld / 4, static_cast<uint2*>(dst), dst_ld / 4, rows,
        static_cast<unsigned>(cols / 4));
    check_launch("f32_to_bf16");
    return;
  }
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
