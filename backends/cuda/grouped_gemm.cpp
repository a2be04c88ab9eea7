#include "grouped_gemm.h"

#include <climits>
#include <string>

#include "device_buffer.h"

namespace moe_cuda {

void grouped_gemm(moe_backend& be, moe_dtype type, bool trans_a, bool trans_b, float alpha, float beta,
                  const std::vector<GroupedProblem>& problems) {
  const size_t count = problems.size();
  if (count == 0) return;
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
    for (int64_t v : {p.m, p.n, p.k, p.lda, p.ldb, p.ldc})
      if (v > INT_MAX)
        fail(MOE_ERR_UNSUPPORTED, "a grouped product of m=" + std::to_string(p.m) + ", n=" + std::to_string(p.n) +
                                      ", k=" + std::to_string(p.k) + " has sizes or strides above 2^31 - 1");
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
  const cudaDataType_t t = type == MOE_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
  check_cublas(cublasGemmGroupedBatchedEx(be.blas, op_first.data(), op_second.data(), m.data(), n.data(), k.data(),
                                          alphas.data(), first, t, ld_first.data(), second, t, ld_second.data(),
                                          betas.data(), c, t, ldc.data(), static_cast<int>(count), group_size.data(),
                                          type == MOE_DTYPE_BF16 ? CUBLAS_COMPUTE_32F : be.grouped_f32_compute),
               "cublasGemmGroupedBatchedEx");
}

}  // namespace moe_cuda
