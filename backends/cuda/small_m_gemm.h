// The products of a decode step while it is recorded: a few f32 rows times bf16 (or f32) weights (nn.Linear
// layout) in one kernel, instead of a conversion of the rows plus cuBLAS (and its temporary), or cuBLAS's
// two-kernel gemv for an f32 router.
#pragma once

#include <cstdint>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

// Computes C = alpha A B' + beta C with the small-m kernel and returns true when the product has its
// shape (A f32 [m <= 16, k] row-major, B bf16 [n, k] transposed, or f32 where the instance computes f32
// products exactly, C f32, 16-byte aligned operands);
// returns false, launching nothing, otherwise. Arguments already checked as the gemm op documents them.
// Whether try_small_m_gemm would compute this product itself (and not leave it to cuBLAS).
bool small_m_gemm_applies(const moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                          moe_dtype c_type);
bool try_small_m_gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                      float beta, void* c, moe_dtype c_type, int64_t ldc);
// rmsnorm_linear's product in one kernel: h = rmsnorm(x, norm_weight, eps) and y = h w' (x f32 [m, k], w
// [n, k] bf16 or f32, h f32 [m, k], y f32 [m, n], all contiguous), the bits of the rmsnorm op followed by
// small_m_gemm, where small_m_gemm_applies to x and w (m >= 1); returns false, launching nothing, otherwise.
bool try_small_m_rmsnorm_gemm(moe_backend& be, int64_t m, int64_t n, int64_t k, const float* x,
                              const void* norm_weight, bool norm_bf16, float eps, float* h, const void* w,
                              moe_dtype w_type, float* y);

}  // namespace moe_cuda
