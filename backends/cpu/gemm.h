// The backend's matrix product, used by the gemm op and by expert_mlp.
//
// Few rows (decode) go to the GEMV kernels, everything else to oneDNN matmuls from the instance's
// primitive cache. Why (bench/cpu_ops_bench.cpp, 2 threads of an AMD EPYC Zen 5 VM, copy ceiling
// 49.5 GB/s): at M = 1 on weights not in cache, oneDNN's matmul streams f32 weights at 26-29 GB/s
// (52-58% of the ceiling) and bf16 at 21-26 GB/s; the GEMV kernels at 38-40 GB/s (76-81%) and
// 27-32 GB/s (54-64%, before their 8-row blocks, which gained another ~15% on one core).
#pragma once

#include <cstdint>

#include "cpu_backend.h"
#include "moe/moe_plugin.h"

namespace moe_cpu {

// Up to this many rows of A use the GEMV kernels. Measured on W [2048 x 512] in cache, 2 threads
// (bench --only small_m): f32 weights, GEMV 31-70 us for M = 1..8 against oneDNN's 78-98 us, but
// 129 us at M = 9 (a second pass over W) against 102; bf16 weights, GEMV 16-31 us for M = 1..4
// against 40-42 us, level at M = 5..8 (44 vs 44 us at M = 5, 53 vs 52 at M = 8), where oneDNN's bf16
// dot products catch up.
inline int64_t gemv_max_rows(moe_dtype b_type) { return b_type == MOE_DTYPE_BF16 ? 4 : 8; }

// C = alpha * A' . B' + beta * C as the gemm op documents, with an f32 C; arguments already checked.
void gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
          moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, float beta, float* c,
          int64_t ldc);

}  // namespace moe_cpu
