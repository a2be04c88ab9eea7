// Many independent row-major products of different sizes in one cuBLAS call
// (cublasGemmGroupedBatchedEx): the experts' products, one problem per expert that has rows, instead of
// a host loop of small launches.
#pragma once

#include <cstdint>
#include <vector>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

// C [m, n] = alpha * A' [m, k] . B' [k, n] + beta * C, row-major, with A' = A or A^T (A stored [k, m]) and
// B' = B or B^T (B stored [n, k]); lda, ldb, ldc are row strides in elements.
struct GroupedProblem {
  const void* a;
  const void* b;
  void* c;
  int64_t m, n, k, lda, ldb, ldc;
};

// Runs every problem with the same transposes, alpha and beta. A, B and C are all of `type`: f32 (f32
// arithmetic, or the instance's tensor-core mode; see grouped_gemm.cpp for MOE_CUDA_F32_MATH=bf16) or
// bf16 (bf16 products accumulated in f32).
void grouped_gemm(moe_backend& be, moe_dtype type, bool trans_a, bool trans_b, float alpha, float beta,
                  const std::vector<GroupedProblem>& problems);

}  // namespace moe_cuda
