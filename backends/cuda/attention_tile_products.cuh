// Block-wide products of small tiles in shared memory, for the flash-style attention backward:
//   C [m, n] (+)= A' [m, k] . B' [k, n],  A' = A (A[i * lda + k]) or A^T (A[k * lda + i]),
//                                          B' = B (B[k * ldb + j]) or B^T (B[j * ldb + k]),
// with C in f32. Two versions, chosen by the operands' type:
//  - float operands: f32 arithmetic on the CUDA cores (the exact path). Each thread owns a 4 x 4 micro
//    tile (rows ti + r * m/4, columns tj + c * n/4), so that a warp reads consecutive columns of B' and
//    one or two rows of A'; operand rows are padded to an odd number of floats, so transposed reads hit
//    32 different banks.
//  - bf16 operands: tensor cores through wmma (16 x 16 x 16 bf16 products accumulated in f32); each warp
//    owns whole 16 x 16 tiles of C. Operand pitches are multiples of 8 elements and regions start on 128
//    bytes, as wmma's loads require.
// m and n are multiples of 16 (so of 4), k a multiple of 16; every thread of the block calls it, and the
// caller puts a barrier between a product and any read of its C or write of its operands.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

namespace moe_cuda {

template <bool TransA, bool TransB>
__device__ __forceinline__ void tile_product(float* c, int ldc, const float* a, int lda, const float* b, int ldb,
                                             int m, int n, int k, bool accumulate) {
  const int row_groups = m / 4, col_groups = n / 4;
  for (int u = threadIdx.x; u < row_groups * col_groups; u += blockDim.x) {
    const int ti = u / col_groups, tj = u % col_groups;
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[r][q] = accumulate ? c[(ti + r * row_groups) * ldc + tj + q * col_groups] : 0.f;
    for (int kk = 0; kk < k; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int i = ti + r * row_groups;
        av[r] = TransA ? a[kk * lda + i] : a[i * lda + kk];
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int j = tj + q * col_groups;
        bv[q] = TransB ? b[j * ldb + kk] : b[kk * ldb + j];
      }
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[r][q] = fmaf(av[r], bv[q], acc[r][q]);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int q = 0; q < 4; ++q) c[(ti + r * row_groups) * ldc + tj + q * col_groups] = acc[r][q];
  }
}

template <bool TransA, bool TransB>
__device__ __forceinline__ void tile_product(float* c, int ldc, const __nv_bfloat16* a, int lda,
                                             const __nv_bfloat16* b, int ldb, int m, int n, int k, bool accumulate) {
  namespace w = nvcuda::wmma;
  using LayoutA = std::conditional_t<TransA, w::col_major, w::row_major>;
  using LayoutB = std::conditional_t<TransB, w::col_major, w::row_major>;
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32, col_tiles = n / 16;
  for (int t = warp; t < (m / 16) * col_tiles; t += warps) {
    const int i0 = t / col_tiles * 16, j0 = t % col_tiles * 16;
    w::fragment<w::accumulator, 16, 16, 16, float> acc;
    if (accumulate)
      w::load_matrix_sync(acc, c + i0 * ldc + j0, ldc, w::mem_row_major);
    else
      w::fill_fragment(acc, 0.f);
    for (int k0 = 0; k0 < k; k0 += 16) {
      w::fragment<w::matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA> fa;
      w::fragment<w::matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB> fb;
      w::load_matrix_sync(fa, TransA ? a + k0 * lda + i0 : a + i0 * lda + k0, lda);
      w::load_matrix_sync(fb, TransB ? b + j0 * ldb + k0 : b + k0 * ldb + j0, ldb);
      w::mma_sync(acc, fa, fb, acc);
    }
    w::store_matrix_sync(c + i0 * ldc + j0, acc, ldc, w::mem_row_major);
  }
}

// Row pitches (in elements) of operand tiles of `width` (a multiple of 16) columns: odd for floats (see
// above), width + 8 for bf16 (a multiple of 8 that spreads the rows of a 16 x 16 load over the banks).
template <typename T>
__host__ __device__ constexpr int operand_pitch(int width) {
  return sizeof(T) == 2 ? width + 8 : width + 1;
}
// Row pitch of f32 result tiles: a multiple of 4 floats (16 bytes), as wmma's stores require.
__host__ __device__ constexpr int result_pitch(int width) { return width + 4; }
__host__ __device__ constexpr int padded16(int width) { return (width + 15) / 16 * 16; }

}  // namespace moe_cuda
