#include "gemm.h"

#include <string>

#include "backend_ops.h"
#include "bf16.h"
#include "errors.h"
#include "parallel.h"
#include "row_buckets.h"
#include "tensor_checks.h"
#include "thread_scratch.h"

namespace moe_cpu {
namespace {

using dt = dnnl::memory::data_type;

// A GEMV thread should stream at least this much of B to pay for waking it.
constexpr int64_t kGemvBytesPerThread = 64 << 10;

size_t element_size(moe_dtype t) { return t == MOE_DTYPE_BF16 ? 2 : 4; }

// A' (A, or A [k, m] transposed) as packed rows [m, k] of type `to`, in the calling thread's scratch
// slot `slot`.
const void* pack_a(moe_backend& be, const void* a, moe_dtype from, bool trans_a, int64_t lda, int64_t m, int64_t k,
                   moe_dtype to, ScratchSlot slot) {
  void* out = thread_scratch(slot, static_cast<size_t>(m * k) * element_size(to));
  parallel_ranges(be, m, kMinFloatsPerThread / (2 * k + 1) + 1, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (!trans_a && to == MOE_DTYPE_BF16 && from == MOE_DTYPE_F32) {
        be.kernels.f32_to_bf16(static_cast<const float*>(a) + r * lda, static_cast<uint16_t*>(out) + r * k, k);
      } else if (!trans_a && to == MOE_DTYPE_F32 && from == MOE_DTYPE_BF16) {
        be.kernels.bf16_to_f32(static_cast<const uint16_t*>(a) + r * lda, static_cast<float*>(out) + r * k, k);
      } else {  // a column of A: element by element
        for (int64_t p = 0; p < k; ++p) {
          const int64_t at = trans_a ? p * lda + r : r * lda + p;
          const float v = float_at(a, from == MOE_DTYPE_BF16, at);
          if (to == MOE_DTYPE_BF16)
            static_cast<uint16_t*>(out)[r * k + p] = float_to_bf16(v);
          else
            static_cast<float*>(out)[r * k + p] = v;
        }
      }
    }
  });
  return out;
}

void gemv(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
          moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  // The kernels read f32 rows of A; anything else is packed first (it is only m <= 8 rows).
  if (a_type != MOE_DTYPE_F32 || trans_a) {
    a = pack_a(be, a, a_type, trans_a, lda, m, k, MOE_DTYPE_F32, ScratchSlot::kGemvA);
    lda = k;
  }
  const GemvArgs args{m, n, k, static_cast<const float*>(a), lda, b, b_type == MOE_DTYPE_BF16, trans_b, ldb,
                      alpha, beta, c, ldc};
  const int64_t bytes_per_column = k * static_cast<int64_t>(element_size(b_type));
  // Column ranges in multiples of 128: whole blocks of B rows (or vectors) for the kernels.
  parallel_ranges(be, n, kGemvBytesPerThread / (bytes_per_column ? bytes_per_column : 1) + 1, 128,
                  [&](int64_t begin, int64_t end) { be.kernels.gemv(args, begin, end); });
}

dt onednn_type(moe_dtype t) { return t == MOE_DTYPE_BF16 ? dt::bf16 : dt::f32; }

}  // namespace

void gemm(moe_backend& be, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const void* a,
          moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = beta * C, and C is not read when beta is 0
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = beta == 0.f ? 0.f : beta * c[r * ldc + j];
    return;
  }
  if (m <= gemv_max_rows(b_type)) {
    gemv(be, trans_a, trans_b, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta, c, ldc);
    return;
  }
  // oneDNN multiplies matching types: bf16 weights make A bf16 (the avx512_bf16 dot products); f32
  // weights make a bf16 A f32.
  if (a_type != b_type) {
    a = pack_a(be, a, a_type, trans_a, lda, m, k, b_type, ScratchSlot::kMatmulA);
    a_type = b_type;
    trans_a = false;
    lda = k;
  }
  // Row blocks of bucket sizes (row_buckets.h), each in place; the last few rows go to the GEMV
  // kernels. Row r of A' starts at row r of A, or with trans_a at column r.
  const size_t a_step = (trans_a ? 1 : static_cast<size_t>(lda)) * element_size(a_type);
  for (int64_t r0 = 0; r0 < m;) {
    const int64_t rows = m - r0;
    const void* a_block = static_cast<const char*>(a) + r0 * a_step;
    if (rows <= gemv_max_rows(b_type)) {
      gemv(be, trans_a, trans_b, rows, n, k, alpha, a_block, a_type, lda, b, b_type, ldb, beta, c + r0 * ldc, ldc);
      break;
    }
    const int64_t block = round_rows_down(rows);
    be.matmuls.run(MatmulShape{block, n, k, lda, ldb, ldc, onednn_type(a_type), onednn_type(b_type), trans_a, trans_b,
                               alpha, beta},
                   a_block, b, c + r0 * ldc);
    r0 += block;
  }
}

moe_status cpu_gemm(moe_backend* be, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                    float beta, void* c, moe_dtype c_type, int64_t ldc) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    if (m < 0 || n < 0 || k < 0)
      invalid("gemm sizes m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" + std::to_string(k) +
              " must not be negative");
    for (auto [type, name] : {std::pair{a_type, "a"}, std::pair{b_type, "b"}})
      if (type != MOE_DTYPE_F32 && type != MOE_DTYPE_BF16)
        fail(MOE_ERR_UNSUPPORTED, std::string(name) + " must be f32 or bf16, is " + dtype_name(type));
    if (c_type != MOE_DTYPE_F32)
      fail(MOE_ERR_UNSUPPORTED, std::string("c is ") + dtype_name(c_type) +
                                    ": the CPU backend keeps activations in f32, so c must be f32");
    // Stored row lengths: A is [m, k], or [k, m] with trans_a; B is [k, n], or [n, k] with trans_b.
    const int64_t a_width = trans_a ? m : k, b_width = trans_b ? k : n;
    if (lda < a_width || lda < 1)
      invalid("lda=" + std::to_string(lda) + " is less than the row length of a (" + std::to_string(a_width) + ")");
    if (ldb < b_width || ldb < 1)
      invalid("ldb=" + std::to_string(ldb) + " is less than the row length of b (" + std::to_string(b_width) + ")");
    if (ldc < n || ldc < 1) invalid("ldc=" + std::to_string(ldc) + " is less than n=" + std::to_string(n));
    // Far beyond any real buffer, and small enough that every index product fits in 64 bits.
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
    gemm(backend, trans_a != 0, trans_b != 0, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta,
         static_cast<float*>(c), ldc);
  });
}

}  // namespace moe_cpu
