#include <climits>
#include <type_traits>

#include "backend_instance.h"
#include "device_math.cuh"
#include "errors.h"
#include "row_dots.cuh"
#include "small_m_gemm.h"
#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

// A warp per output column reads its weight row once in 16-byte loads for kPassRows rows at a time. The
// rows are rounded to bf16 first, so the products are the bf16 x bf16 products of the cuBLAS path,
// accumulated in f32 (only the order of the sum differs).
constexpr int kGemvWarps = 8;
constexpr int64_t kGemvMaxRows = 16;

// W: bf16 weights (the rows rounded to bf16, as above) or f32 ones (exact f32 products, as cuBLAS computes
// them under CUBLAS_COMPUTE_32F: a router kept in f32).
template <typename W>
__global__ void __launch_bounds__(kGemvWarps * 32)
    small_m_gemm(const float* a, int64_t lda, const W* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k, float alpha, float beta) {
  pdl_wait_and_release();
  const int64_t j = blockIdx.x * int64_t{kGemvWarps} + threadIdx.x / 32;
  if (j >= n) return;
  const W* w = b + j * ldb;
  for (int64_t r0 = 0; r0 < m; r0 += kPassRows) {
    const int nr = static_cast<int>(min(int64_t{kPassRows}, m - r0));
    float acc[kPassRows] = {};
    dot_rows<W, true, std::is_same_v<W, __nv_bfloat16>>(w, a + r0 * lda, lda, k, nr, acc);
#pragma unroll
    for (int r = 0; r < kPassRows; ++r) {
      const float sum = warp_sum(acc[r]);
      if (r < nr && threadIdx.x % 32 == 0) {
        float& out = c[(r0 + r) * ldc + j];
        out = alpha * sum + (beta == 0.f ? 0.f : beta * out);
      }
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether small_m_gemm computes this product (else cuBLAS does): f32 weights only where the instance
// computes f32 products exactly (under MOE_CUDA_F32_MATH cuBLAS would round them).
bool small_m_product(const moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t k, const void* a,
                     moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, moe_dtype c_type) {
  const bool weights = b_type == MOE_DTYPE_BF16 || (b_type == MOE_DTYPE_F32 && be.f32_compute == CUBLAS_COMPUTE_32F);
  return !trans_a && trans_b && a_type == MOE_DTYPE_F32 && weights && c_type == MOE_DTYPE_F32 && m <= kGemvMaxRows &&
         k % 8 == 0 && lda % 4 == 0 && ldb % 8 == 0 && aligned16(a) && aligned16(b);
}

}  // namespace

bool small_m_gemm_applies(const moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                          moe_dtype c_type) {
  return k > 0 && n / kGemvWarps < INT_MAX &&
         small_m_product(be, trans_a, trans_b, m, k, a, a_type, lda, b, b_type, ldb, c_type);
}

bool try_small_m_gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                      float beta, void* c, moe_dtype c_type, int64_t ldc) {
  if (!small_m_gemm_applies(be, trans_a, trans_b, m, n, k, a, a_type, lda, b, b_type, ldb, c_type)) return false;
  const unsigned blocks = static_cast<unsigned>((n + kGemvWarps - 1) / kGemvWarps);
  if (b_type == MOE_DTYPE_BF16)
    launch_pdl(be, "small_m_gemm", small_m_gemm<__nv_bfloat16>, blocks, kGemvWarps * 32, 0,
               static_cast<const float*>(a), lda, static_cast<const __nv_bfloat16*>(b), ldb, static_cast<float*>(c),
               ldc, m, n, k, alpha, beta);
  else
    launch_pdl(be, "small_m_gemm", small_m_gemm<float>, blocks, kGemvWarps * 32, 0, static_cast<const float*>(a), lda,
               static_cast<const float*>(b), ldb, static_cast<float*>(c), ldc, m, n, k, alpha, beta);
  return true;
}

}  // namespace moe_cuda
