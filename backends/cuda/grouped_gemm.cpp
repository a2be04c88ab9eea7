#include "grouped_gemm.h"

#include <climits>
#include <string>

#include "device_buffer.h"

namespace moe_cuda {

namespace {

void check_sizes(const GroupedProblem& p) {
  for (int64_t v : {p.m, p.n, p.k, p.lda, p.ldb, p.ldc})
    if (v > INT_MAX)
      fail(MOE_ERR_UNSUPPORTED, "a grouped product of m=" + std::to_string(p.m) + ", n=" + std::to_string(p.n) +
                                    ", k=" + std::to_string(p.k) + " has sizes or strides above 2^31 - 1");
}

cudaDataType_t cuda_type(moe_dtype t) { return t == MOE_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// The problems as one cublasGemmEx call each, f32 operands under the instance's f32 compute mode.
void separate_products(moe_backend& be, bool trans_a, bool trans_b, float alpha, float beta,
                       const std::vector<GroupedProblem>& problems) {
  for (const GroupedProblem& p : problems) {
    check_sizes(p);
    if (p.m == 0 || p.n == 0) continue;
    // Row-major C = A' B' as column-major C^T = B'^T A'^T, as below.
    check_cublas(cublasGemmEx(be.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                              static_cast<int>(p.n), static_cast<int>(p.m), static_cast<int>(p.k), &alpha, p.b,
                              CUDA_R_32F, static_cast<int>(p.ldb), p.a, CUDA_R_32F, static_cast<int>(p.lda), &beta,
                              p.c, CUDA_R_32F, static_cast<int>(p.ldc), be.f32_compute, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }
}

}  // namespace

void grouped_gemm(moe_backend& be, moe_dtype type, bool trans_a, bool trans_b, float alpha, float beta,
                  const std::vector<GroupedProblem>& problems) {
  const size_t count = problems.size();
  if (count == 0) return;
  // The grouped call has no bf16 mode for f32 operands (it runs TF32). Under MOE_CUDA_F32_MATH=bf16 the
  // products A B^T (the expert MLP's forward layout) run as separate calls on bf16 tensor cores instead:
  // in the seed-1.2B training step on an H200, expert_mlp took 0.91 ms a layer (median) this way against
  // 1.02 ms grouped on TF32. The other layouts stay grouped: separate calls for the expert backward's
  // products (A^T B and A B, bf16 operands, f32 results) measured 13.1 ms a layer against 3.3 ms grouped.
  if (type == MOE_DTYPE_F32 && be.f32_compute == CUBLAS_COMPUTE_32F_FAST_16BF && !trans_a && trans_b) {
    separate_products(be, trans_a, trans_b, alpha, beta, problems);
    return;
  }
  if (count > INT_MAX) fail(MOE_ERR_UNSUPPORTED, "more than 2^31 - 1 grouped products");
  // Row-major C = A' B' is column-major C^T = B'^T A'^T: cuBLAS's first operand is B, its second A, and m
  // and n trade places (see gemm.h).
  std::vector<cublasOperation_t> op_first(count, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N);
  std::vector<cublasOperation_t> op_second(count, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N);
  std::vector<int> m(count), n(count), k(count), ld_first(count), ld_second(count), ldc(count), group_size(count, 1);
  std::vector<float> alphas(count, alpha), betas(count, beta);
  std::vector<const void*> pointers(3 * count);
  for (size_t i = 0; i < count; ++i) {
    const GroupedProblem& p = problems[i];
    check_sizes(p);
    m[i] = static_cast<int>(p.n);
    n[i] = static_cast<int>(p.m);
    k[i] = static_cast<int>(p.k);
    ld_first[i] = static_cast<int>(p.ldb);
    ld_second[i] = static_cast<int>(p.lda);
    ldc[i] = static_cast<int>(p.ldc);
    pointers[i] = p.b;
    pointers[count + i] = p.a;
    pointers[2 * count + i] = p.c;
  }
  // cuBLAS reads the matrix pointers from device memory.
  const DeviceBuffer device_pointers = upload_vector(be, pointers);
  const void* const* first = device_pointers.as<const void* const>();
  const void* const* second = first + count;
  void* const* c = const_cast<void* const*>(second + count);
  const cudaDataType_t t = cuda_type(type);
  check_cublas(cublasGemmGroupedBatchedEx(be.blas, op_first.data(), op_second.data(), m.data(), n.data(), k.data(),
                                          alphas.data(), first, t, ld_first.data(), second, t, ld_second.data(),
                                          betas.data(), c, t, ldc.data(), static_cast<int>(count), group_size.data(),
                                          type == MOE_DTYPE_BF16 ? CUBLAS_COMPUTE_32F : be.grouped_f32_compute),
               "cublasGemmGroupedBatchedEx");
}

}  // namespace moe_cuda
