#include <climits>
#include <optional>
#include <string>
#include <utility>

#include "backend_instance.h"
#include "backend_ops.h"
#include "convert.h"
#include "device_buffer.h"
#include "device_math.cuh"
#include "gemm.h"
#include "small_m_gemm.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

// C = beta * C over m rows of n elements (an empty sum, k = 0); C is not read when beta is 0.
template <typename T>
__global__ void scale_rows(T* c, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < m * n; i += int64_t{gridDim.x} * blockDim.x) {
    T& v = c[i / n * ldc + i % n];
    v = from_float<T>(beta == 0.f ? 0.f : beta * to_float(v));
  }
}

cudaDataType_t cuda_type(moe_dtype t) { return t == MOE_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

size_t element_size(moe_dtype t) { return t == MOE_DTYPE_BF16 ? 2 : 4; }

// An operand as `to`: itself when it already is, else converted into `copy` (packed rows, so that its
// row stride becomes its row length).
const void* operand_as(moe_backend& be, const void* x, moe_dtype from, moe_dtype to, int64_t rows, int64_t cols,
                       int64_t& ld, std::optional<DeviceBuffer>& copy) {
  if (from == to) return x;
  copy.emplace(be, static_cast<size_t>(rows * cols) * element_size(to));
  if (to == MOE_DTYPE_BF16)
    f32_to_bf16(be, static_cast<const float*>(x), ld, copy->as<void>(), cols, rows, cols);
  else
    bf16_to_f32(be, x, ld, copy->as<float>(), cols, rows, cols);
  ld = cols;
  return copy->as<void>();
}

// Under MOE_CUDA_F32_MATH=bf16 (f32_compute FAST_16BF) a product of f32 operands lets cuBLAS round them to
// bf16, but cuBLAS then reads f32 operands inside its kernels and picks slower kernels for them. A product
// at least this large in every dimension rounds its f32 operands itself instead, into packed bf16
// temporaries (a copy at memory speed, convert.cu), and runs bf16 x bf16 with f32 accumulation
// (CUBLAS_COMPUTE_32F) on the tensor cores. Numerically that is what FAST_16BF does (operands rounded to
// bf16, products accumulated in f32; here the rounding is to nearest even). Measured on an H200
// (bench/gpu/gemm_rounding_bench.cu, medians, us, FAST_16BF -> rounded here): the seed-1.2B training
// step's 8192 x 1024 x 1024 products 59 -> 54 (X W^T), 72 -> 54 (dY W), 103 -> 59 (dY^T X); its lm head
// (vocab 32000) 1426 -> 987, 1381 -> 1096, 2483 -> 1082; 8192 x 512 x 1024 the same (39). Smaller
// products keep FAST_16BF, where reading the operands twice costs more than the slower kernel: the
// router's 8192 x 16 x 1024 24 us against 27 rounded. (512^3 measured 18 us against 20, 256^3 12 against
// 19: a limit near m n k = 2^32 would fit better; this one is what the GPU tests ran.)
constexpr int64_t kRoundedProductMinSize = 256;

bool rounds_f32_operands(const moe_backend& be, int64_t m, int64_t n, int64_t k) {
  return be.f32_compute == CUBLAS_COMPUTE_32F_FAST_16BF && m >= kRoundedProductMinSize &&
         n >= kRoundedProductMinSize && k >= kRoundedProductMinSize;
}

}  // namespace

void gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
          moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, float beta, void* c,
          moe_dtype c_type, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (c_type == MOE_DTYPE_BF16)
      scale_rows<<<grid_for(m * n), kThreads, 0, be.stream>>>(static_cast<__nv_bfloat16*>(c), ldc, m, n, beta);
    else
      scale_rows<<<grid_for(m * n), kThreads, 0, be.stream>>>(static_cast<float*>(c), ldc, m, n, beta);
    check_launch("scale_rows");
    return;
  }
  for (int64_t v : {m, n, k, lda, ldb, ldc})
    if (v > INT_MAX)
      fail(MOE_ERR_UNSUPPORTED, "gemm sizes and strides above 2^31 - 1 (m=" + std::to_string(m) + ", n=" +
                                    std::to_string(n) + ", k=" + std::to_string(k) + ") are not supported");
  const moe_dtype product = c_type == MOE_DTYPE_BF16 || b_type == MOE_DTYPE_BF16 || rounds_f32_operands(be, m, n, k)
                                ? MOE_DTYPE_BF16
                                : MOE_DTYPE_F32;
  // Stored shapes: A is [m, k], or [k, m] with trans_a; B is [k, n], or [n, k] with trans_b.
  const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  std::optional<DeviceBuffer> a_copy, b_copy;
  const void* a_op = operand_as(be, a, a_type, product, a_rows, a_cols, lda, a_copy);
  const void* b_op = operand_as(be, b, b_type, product, b_rows, b_cols, ldb, b_copy);
  check_cublas(cublasGemmEx(be.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                            static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b_op,
                            cuda_type(product), static_cast<int>(ldb), a_op, cuda_type(product),
                            static_cast<int>(lda), &beta, c, cuda_type(c_type), static_cast<int>(ldc),
                            product == MOE_DTYPE_F32 ? be.f32_compute : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

moe_status cuda_gemm(moe_backend* be, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                     float beta, void* c, moe_dtype c_type, int64_t ldc) {
  return guarded(be, [&](moe_backend& backend) {
    if (m < 0 || n < 0 || k < 0)
      invalid("gemm sizes m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" + std::to_string(k) +
              " must not be negative");
    for (auto [type, name] : {std::pair{a_type, "a"}, std::pair{b_type, "b"}, std::pair{c_type, "c"}})
      if (type != MOE_DTYPE_F32 && type != MOE_DTYPE_BF16)
        fail(MOE_ERR_UNSUPPORTED, std::string(name) + " must be f32 or bf16, is " + dtype_name(type));
    const int64_t a_width = trans_a ? m : k, b_width = trans_b ? k : n;
    if (lda < a_width || lda < 1)
      invalid("lda=" + std::to_string(lda) + " is less than the row length of a (" + std::to_string(a_width) + ")");
    if (ldb < b_width || ldb < 1)
      invalid("ldb=" + std::to_string(ldb) + " is less than the row length of b (" + std::to_string(b_width) + ")");
    if (ldc < n || ldc < 1) invalid("ldc=" + std::to_string(ldc) + " is less than n=" + std::to_string(n));
    auto spans = [](int64_t rows, int64_t stride) { return rows > (int64_t{1} << 46) / stride; };
    if (spans(trans_a ? k : m, lda) || spans(trans_b ? n : k, ldb) || spans(m, ldc))
      invalid("gemm operands of m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" + std::to_string(k) +
              " span more than 2^46 elements");
    if (m == 0 || n == 0) return;
    check_pointer(c, "c");
    if (k > 0) {
      check_pointer(a, "a");
      check_pointer(b, "b");
    }
    if (recording(backend) && try_small_m_gemm(backend, trans_a != 0, trans_b != 0, m, n, k, alpha, a, a_type, lda,
                                               b, b_type, ldb, beta, c, c_type, ldc))
      return;
    gemm(backend, trans_a != 0, trans_b != 0, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta, c, c_type, ldc);
  });
}

}  // namespace moe_cuda
