#include <climits>
#include <type_traits>

#include "backend_instance.h"
#include "device_math.cuh"
#include "errors.h"
#include "row_dots.cuh"
#include "small_m_gemm.h"
#include "pdl_launch.cuh"
#include "rmsnorm_device.cuh"

namespace moe_cuda {
namespace {

// A warp per output column reads its weight row once in 16-byte loads for kPassRows rows at a time. The
// rows are rounded to bf16 first, so the products are the bf16 x bf16 products of the cuBLAS path,
// accumulated in f32 (only the order of the sum differs).
constexpr int kGemvWarps = 8;
constexpr int64_t kGemvMaxRows = 16;

// The norm that rmsnorm_linear's kernel applies to A's rows before the product (NormedRows), writing the
// normed rows to h as well.
struct InputNorm {
  const void* weight = nullptr;  // f32 or bf16 [k]
  bool bf16 = false;
  float eps = 0.f;
  float* h = nullptr;  // [m, k]
};

// W: bf16 weights (the rows rounded to bf16, as above) or f32 ones (exact f32 products, as cuBLAS computes
// them under CUBLAS_COMPUTE_32F: a router kept in f32). Normed: A's rows go through `norm` first, each block
// taking the rows' rstd as the rmsnorm op does (a block of kNormThreads threads) and block 0 writing the
// normed rows to norm.h, so that C and h are the rmsnorm op's and this product's bit for bit.
template <typename W, bool Normed>
__global__ void __launch_bounds__(kGemvWarps * 32)
    small_m_gemm(const float* a, int64_t lda, const W* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k, float alpha, float beta, InputNorm norm) {
  static_assert(!Normed || kGemvWarps * 32 == kNormThreads, "the norm's sums need the rmsnorm op's block size");
  __shared__ float rstd[Normed ? kGemvMaxRows : 1];
  pdl_wait_and_release();
  if constexpr (Normed) {
    __shared__ double scratch[32];
    for (int64_t r = 0; r < m; ++r) {
      const float s = row_rstd(a + r * lda, k, norm.eps, scratch);
      if (threadIdx.x == 0) rstd[r] = s;
    }
    __syncthreads();
    if (blockIdx.x == 0)
      for (int64_t i = threadIdx.x; i < m * k; i += blockDim.x) {
        const int64_t r = i / k, col = i % k;
        norm.h[i] = normed_value(a[r * lda + col], rstd[r], norm.weight, norm.bf16, col);
      }
  }
  const int64_t j = blockIdx.x * int64_t{kGemvWarps} + threadIdx.x / 32;
  if (j >= n) return;
  const W* w = b + j * ldb;
  constexpr bool kRoundIn = std::is_same_v<W, __nv_bfloat16>;
  for (int64_t r0 = 0; r0 < m; r0 += kPassRows) {
    const int nr = static_cast<int>(min(int64_t{kPassRows}, m - r0));
    float acc[kPassRows] = {};
    if constexpr (Normed)
      dot_rows<W, true, kRoundIn>(w, a + r0 * lda, lda, k, nr, acc, NormedRows{rstd + r0, norm.weight, norm.bf16});
    else
      dot_rows<W, true, kRoundIn>(w, a + r0 * lda, lda, k, nr, acc);
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

namespace {

template <bool Normed>
void launch_small_m_gemm(moe_backend& be, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                         const void* b, moe_dtype b_type, int64_t ldb, float beta, float* c, int64_t ldc,
                         const InputNorm& norm) {
  const unsigned blocks = static_cast<unsigned>((n + kGemvWarps - 1) / kGemvWarps);
  const char* name = Normed ? "small_m_rmsnorm_gemm" : "small_m_gemm";
  if (b_type == MOE_DTYPE_BF16)
    launch_pdl(be, name, small_m_gemm<__nv_bfloat16, Normed>, blocks, kGemvWarps * 32, 0, a, lda,
               static_cast<const __nv_bfloat16*>(b), ldb, c, ldc, m, n, k, alpha, beta, norm);
  else
    launch_pdl(be, name, small_m_gemm<float, Normed>, blocks, kGemvWarps * 32, 0, a, lda, static_cast<const float*>(b),
               ldb, c, ldc, m, n, k, alpha, beta, norm);
}

}  // namespace

bool try_small_m_gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                      float beta, void* c, moe_dtype c_type, int64_t ldc) {
  if (!small_m_gemm_applies(be, trans_a, trans_b, m, n, k, a, a_type, lda, b, b_type, ldb, c_type)) return false;
  launch_small_m_gemm<false>(be, m, n, k, alpha, static_cast<const float*>(a), lda, b, b_type, ldb, beta,
                             static_cast<float*>(c), ldc, InputNorm{});
  return true;
}

bool try_small_m_rmsnorm_gemm(moe_backend& be, int64_t m, int64_t n, int64_t k, const float* x,
                              const void* norm_weight, bool norm_bf16, float eps, float* h, const void* w,
                              moe_dtype w_type, float* y) {
  if (m < 1 || n < 1 || !small_m_gemm_applies(be, false, true, m, n, k, x, MOE_DTYPE_F32, k, w, w_type, k, MOE_DTYPE_F32))
    return false;
  launch_small_m_gemm<true>(be, m, n, k, 1.f, x, k, w, w_type, k, 0.f, y, n, InputNorm{norm_weight, norm_bf16, eps, h});
  return true;
}

}  // namespace moe_cuda
