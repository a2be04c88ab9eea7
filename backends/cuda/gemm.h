// The backend's matrix product (the gemm op, and the dense products inside other ops) through cuBLAS.
//
// Row-major C = A' B' is computed as column-major C^T = B'^T A'^T, which is the same memory: cuBLAS
// gets B as its first operand and A as its second, with m and n swapped. Operand types: bf16 x bf16
// runs on the tensor cores with f32 accumulation; an f32 activation times bf16 weights is converted to
// bf16 first (the op table allows bf16 products where a backend can); f32 x f32 stays f32 (no TF32); a
// bf16 A times f32 B is converted to f32. A bf16 C takes bf16 products of both operands. Under
// MOE_CUDA_F32_MATH=tf32 or bf16 cuBLAS rounds f32 operands itself, except that under bf16 products
// large in every dimension have their f32 operands rounded to bf16 first (gemm.cu says why).
#pragma once

#include <cstdint>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

// Arguments already checked as the gemm op documents them.
void gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
          moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, float beta, void* c,
          moe_dtype c_type, int64_t ldc);

}  // namespace moe_cuda
