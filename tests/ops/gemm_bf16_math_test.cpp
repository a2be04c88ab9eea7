// gemm of f32 operands on the CUDA backend created with MOE_CUDA_F32_MATH=bf16 (the trainer's mode): large
// products round their f32 operands to bf16 in temporaries and run bf16 x bf16 on the tensor cores with
// f32 accumulation, small ones leave the rounding to cuBLAS (gemm.cu). Both against the double-precision
// reference at the bf16 tolerance, over all four layouts, alpha/beta, row strides wider than the rows (odd
// and multiple-of-4 strides: the conversion's element-wise and 4-wide kernels) and a bf16 A (only B is
// rounded then).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend_fixture.h"
#include "base/dtype.h"
#include "cuda_bf16_math.h"
#include "reference_ops.h"

namespace moe::testing {
namespace {

// Parameterized like the other op tests (so that the CUDA filter Backends/*/cuda selects it); only the
// CUDA backend has this mode.
class GemmBf16MathTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(GemmBf16MathTest);

struct Case {
  int64_t m, n, k, pad_a, pad_b, pad_c;
};

// The first three are above gemm.cu's size for rounding into temporaries (4-wide conversion where the
// row lengths and strides allow it, element-wise where not); the last two below it (cuBLAS rounds).
const Case kCases[] = {{256, 264, 512, 0, 0, 0},
                       {300, 260, 270, 3, 5, 7},
                       {264, 512, 256, 4, 8, 1},
                       {17, 33, 130, 0, 0, 0},
                       {1024, 16, 300, 2, 0, 3}};

TEST_P(GemmBf16MathTest, F32OperandsOnBf16TensorCores) {
  if (GetParam() != "cuda") GTEST_SKIP() << "MOE_CUDA_F32_MATH is the CUDA backend's";
  std::string skip;
  std::unique_ptr<Backend> cuda = cuda_with_bf16_math(skip);
  ASSERT_TRUE(cuda) << skip;  // the fixture found the cuda backend usable
  Backend& be = *cuda;
  uint32_t seed = 500;
  for (moe_dtype at : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {true, false}) {
        for (const Case& s : kCases) {
          for (auto [alpha, beta] : {std::pair{1.f, 0.f}, std::pair{0.5f, 1.f}}) {
            SCOPED_TRACE(::testing::Message() << "a " << at << (trans_a ? "^T" : "") << (trans_b ? " b^T" : " b")
                                              << " m=" << s.m << " n=" << s.n << " k=" << s.k << " beta=" << beta);
            const int64_t lda = (trans_a ? s.m : s.k) + s.pad_a, ldb = (trans_b ? s.k : s.n) + s.pad_b;
            const int64_t ldc = s.n + s.pad_c, a_rows = trans_a ? s.k : s.m, b_rows = trans_b ? s.n : s.k;
            auto a = rounded_if_bf16(random_floats(a_rows * lda, seed++), at);
            auto b = random_floats(b_rows * ldb, seed++);
            auto c = random_floats(s.m * ldc, seed++);
            std::vector<uint16_t> a_bits(a.size());
            for (size_t i = 0; i < a.size(); ++i) a_bits[i] = f32_to_bf16(a[i]);
            Tensor ta = Tensor::from_host(be, at, {a_rows, lda},
                                          at == MOE_DTYPE_F32 ? static_cast<const void*>(a.data()) : a_bits.data());
            Tensor tb = Tensor::from_host(be, MOE_DTYPE_F32, {b_rows, ldb}, b.data());
            Tensor tc = Tensor::from_host(be, MOE_DTYPE_F32, {s.m, ldc}, c.data());
            be.check(be.ops().gemm(be.handle(), trans_a, trans_b, s.m, s.n, s.k, alpha, ta.data(), at, lda,
                                   tb.data(), MOE_DTYPE_F32, ldb, beta, tc.data(), MOE_DTYPE_F32, ldc),
                     "gemm");
            std::vector<double> want = to_double(c);
            reference::gemm(trans_a, trans_b, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, want, ldc);
            auto got = tc.to_vector<float>();
            EXPECT_TRUE(close_to(got, want, kBf16Tolerance));
            for (int64_t r = 0; r < s.m; ++r)
              for (int64_t j = s.n; j < ldc; ++j) ASSERT_EQ(got[r * ldc + j], c[r * ldc + j]) << "padding of C written";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace moe::testing
