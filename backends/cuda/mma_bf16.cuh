// Warp-level bf16 tensor-core products on register fragments (mma.sync m16n8k16, f32 accumulation) and
// the shared-memory loads that feed them (ldmatrix). Fragment layouts, for lane = 4 g + c:
//   A (16 x 16, row-major): a[0] = rows g, cols 2c..2c+1;   a[1] = row g + 8, cols 2c..;
//                           a[2] = row g, cols 2c + 8..;     a[3] = row g + 8, cols 2c + 8..
//   B (16 x 8, k x n):      b[0] = k 2c..2c+1, col g;        b[1] = k 2c + 8.., col g
//   C (16 x 8, f32):        c[0], c[1] = row g, cols 2c, 2c + 1;  c[2], c[3] = row g + 8, the same cols
// So a C fragment pair (columns 0-7 and 8-15) is, packed to bf16, the A fragment of the next product
// over those 16 columns: flash attention's probabilities never leave registers.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace moe_cuda {

// Two floats as one register of bf16 (lo in the low half: the lower column or k index).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// c += a . b (16 x 8 x 16).
__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory: lanes 8i .. 8i + 7 give the addresses of matrix i's rows
// (16 bytes each, 16-byte aligned); r[i] is matrix i's fragment (row lane / 4, cols 2 (lane % 4) ..).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The same, each matrix transposed: r[i] = rows 2 (lane % 4) .. + 1 of column lane / 4 of matrix i.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

}  // namespace moe_cuda
