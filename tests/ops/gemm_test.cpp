// gemm: every dtype pair, all four operand layouts, odd sizes on both sides of the backends' small-M
// paths, alpha/beta (beta = 1 is the fused residual add), row strides wider than the rows, a bf16 C
// (optional in the ABI), bad arguments.
#include "backend_fixture.h"
#include "base/dtype.h"
#include "plugins/host_api.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class GemmTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(GemmTest);

struct Size {
  int64_t m, n, k;
};

// m = 1..5 straddles the small-M (GEMV) path, m = 17, 33, 250 are split into several row blocks by
// the CPU backend; n and k include 1, primes and non-multiples of 16; m = 1 with k = 56 reaches every
// tail of the one-row GEMV loop (two vectors at a time, one vector, a partial one) at both vector widths.
const Size kSizes[] = {{1, 1, 1},     {1, 100, 33},  {3, 7, 130},   {4, 33, 16},   {5, 100, 31}, {17, 33, 1},
                       {17, 7, 130},  {64, 100, 64}, {2, 300, 515}, {33, 257, 96}, {250, 40, 24}, {1, 9, 56}};

const moe_dtype kTypePairs[][2] = {{MOE_DTYPE_F32, MOE_DTYPE_F32},
                                   {MOE_DTYPE_F32, MOE_DTYPE_BF16},
                                   {MOE_DTYPE_BF16, MOE_DTYPE_BF16},
                                   {MOE_DTYPE_BF16, MOE_DTYPE_F32}};

TEST_P(GemmTest, MatchesReferenceForAllTypesLayoutsAndSizes) {
  uint32_t seed = 1;
  for (const auto& types : kTypePairs) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {true, false}) {
        for (const Size& s : kSizes) {
          SCOPED_TRACE(::testing::Message() << "a " << types[0] << (trans_a ? "^T" : "") << " b " << types[1]
                                            << (trans_b ? "^T" : "") << " m=" << s.m << " n=" << s.n << " k=" << s.k);
          auto a = rounded_if_bf16(random_floats(s.m * s.k, seed++), types[0]);
          auto b = rounded_if_bf16(random_floats(s.n * s.k, seed++), types[1]);
          Tensor ta = upload_float(a, types[0], trans_a ? Shape{s.k, s.m} : Shape{s.m, s.k});
          Tensor tb = upload_float(b, types[1], trans_b ? Shape{s.n, s.k} : Shape{s.k, s.n});
          Tensor tc = poisoned(MOE_DTYPE_F32, {s.m, s.n});  // beta = 0 must not read C
          ops::gemm(ta, tb, trans_a, trans_b, tc);
          std::vector<double> want(s.m * s.n, 0.0);
          reference::gemm(trans_a, trans_b, s.m, s.n, s.k, 1.0, a, trans_a ? s.m : s.k, b, trans_b ? s.k : s.n, 0.0,
                          want, s.n);
          double tol = (types[0] == MOE_DTYPE_BF16 || types[1] == MOE_DTYPE_BF16) ? kBf16Tolerance : kF32Tolerance;
          EXPECT_TRUE(close_to(download_f32(tc), want, tol));
        }
      }
    }
  }
}

TEST_P(GemmTest, AlphaAndBetaAccumulate) {
  uint32_t seed = 100;
  for (moe_dtype bt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (const Size& s : {Size{1, 70, 40}, Size{3, 33, 17}, Size{23, 70, 40}}) {
      for (auto [alpha, beta] : {std::pair{1.f, 1.f}, std::pair{0.5f, 0.25f}, std::pair{-2.f, 0.f}}) {
        SCOPED_TRACE(::testing::Message() << "b " << bt << " m=" << s.m << " alpha=" << alpha << " beta=" << beta);
        auto a = random_floats(s.m * s.k, seed++);
        auto b = rounded_if_bf16(random_floats(s.n * s.k, seed++), bt);
        auto c = random_floats(s.m * s.n, seed++);
        Tensor ta = upload_f32(a, {s.m, s.k});
        Tensor tb = upload_float(b, bt, {s.n, s.k});
        Tensor tc = beta == 0.f ? poisoned(MOE_DTYPE_F32, {s.m, s.n}) : upload_f32(c, {s.m, s.n});
        ops::gemm(ta, tb, false, true, tc, alpha, beta);
        std::vector<double> want = to_double(c);
        reference::gemm(false, true, s.m, s.n, s.k, alpha, a, s.k, b, s.k, beta, want, s.n);
        EXPECT_TRUE(close_to(download_f32(tc), want, tolerance_for(bt)));
      }
    }
  }
}

TEST_P(GemmTest, LinearAccumulateAddsToTheResidual) {
  auto x = random_floats(6 * 24, 7);
  auto w = random_floats(10 * 24, 8);
  auto residual = random_floats(6 * 10, 9);
  Tensor tx = upload_f32(x, {6, 24}), tw = upload_f32(w, {10, 24}), ty = upload_f32(residual, {6, 10});
  ops::linear_accumulate(tx, tw, ty);
  std::vector<double> want = to_double(residual);
  reference::gemm(false, true, 6, 10, 24, 1.0, x, 24, w, 24, 1.0, want, 10);
  EXPECT_TRUE(close_to(download_f32(ty), want, kF32Tolerance));
}

// Row strides wider than the rows (row blocks and column slices of bigger tensors): only the op table
// takes strides. The padding columns of C must come back untouched.
TEST_P(GemmTest, RowStridesWiderThanTheRows) {
  uint32_t seed = 200;
  for (moe_dtype bt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {true, false}) {
        for (const Size& s : {Size{2, 37, 21}, Size{9, 37, 21}, Size{1, 130, 64}}) {
          SCOPED_TRACE(::testing::Message() << "b " << bt << (trans_a ? " a^T" : "") << (trans_b ? " b^T" : "")
                                            << " m=" << s.m);
          const int64_t lda = (trans_a ? s.m : s.k) + 3, ldb = (trans_b ? s.k : s.n) + 5, ldc = s.n + 7;
          const int64_t a_rows = trans_a ? s.k : s.m, b_rows = trans_b ? s.n : s.k;
          auto a = random_floats(a_rows * lda, seed++);
          auto b = rounded_if_bf16(random_floats(b_rows * ldb, seed++), bt);
          auto c = random_floats(s.m * ldc, seed++);
          Tensor ta = upload_f32(a, {a_rows, lda});
          Tensor tb = upload_float(b, bt, {b_rows, ldb});
          Tensor tc = upload_f32(c, {s.m, ldc});
          be().check(be().ops().gemm(be().handle(), trans_a, trans_b, s.m, s.n, s.k, 1.5f, ta.data(), MOE_DTYPE_F32,
                                     lda, tb.data(), bt, ldb, 1.f, tc.data(), MOE_DTYPE_F32, ldc),
                     "gemm");
          std::vector<double> want = to_double(c);
          reference::gemm(trans_a, trans_b, s.m, s.n, s.k, 1.5, a, lda, b, ldb, 1.0, want, ldc);
          auto got = download_f32(tc);
          EXPECT_TRUE(close_to(got, want, tolerance_for(bt)));
          for (int64_t r = 0; r < s.m; ++r)
            for (int64_t j = s.n; j < ldc; ++j) ASSERT_EQ(got[r * ldc + j], c[r * ldc + j]) << "padding of C written";
        }
      }
    }
  }
}

// A bf16 C is for backends that keep activations in bf16; the others must say MOE_ERR_UNSUPPORTED.
TEST_P(GemmTest, Bf16OutputIsComputedOrRefused) {
  const int64_t m = 17, n = 40, k = 24;
  auto a = random_floats(m * k, 300), b = random_floats(n * k, 301);
  Tensor ta = upload_f32(a, {m, k}), tb = upload_f32(b, {n, k});
  Tensor tc = poisoned(MOE_DTYPE_BF16, {m, n});
  moe_status s = be().ops().gemm(be().handle(), 0, 1, m, n, k, 1.f, ta.data(), MOE_DTYPE_F32, k, tb.data(),
                                 MOE_DTYPE_F32, k, 0.f, tc.data(), MOE_DTYPE_BF16, n);
  if (s == MOE_ERR_UNSUPPORTED) {
    EXPECT_NE(take_plugin_error(), "");
    return;
  }
  ASSERT_EQ(s, MOE_OK);
  std::vector<uint16_t> bits = tc.to_vector<uint16_t>();
  std::vector<float> got(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) got[i] = bf16_to_f32(bits[i]);
  std::vector<double> want(m * n, 0.0);
  reference::gemm(false, true, m, n, k, 1.0, a, k, b, k, 0.0, want, n);
  EXPECT_TRUE(close_to(got, want, kBf16Tolerance));
}

TEST_P(GemmTest, RejectsBadArguments) {
  Tensor a = upload_f32(random_floats(4 * 8, 1), {4, 8});
  Tensor c = poisoned(MOE_DTYPE_F32, {4, 8});
  auto call = [&](moe_dtype a_type, int64_t lda, int64_t ldc) {
    return be().ops().gemm(be().handle(), 0, 1, 4, 8, 8, 1.f, a.data(), a_type, lda, a.data(), MOE_DTYPE_F32, 8, 0.f,
                           c.data(), MOE_DTYPE_F32, ldc);
  };
  EXPECT_EQ(call(MOE_DTYPE_F16, 8, 8), MOE_ERR_UNSUPPORTED);
  EXPECT_EQ(call(MOE_DTYPE_F32, 7, 8), MOE_ERR_INVALID_ARGUMENT);  // lda < k
  EXPECT_NE(take_plugin_error().find("lda"), std::string::npos);
  EXPECT_EQ(call(MOE_DTYPE_F32, 8, 5), MOE_ERR_INVALID_ARGUMENT);  // ldc < n
  EXPECT_EQ(be().ops().gemm(be().handle(), 0, 1, -1, 8, 8, 1.f, a.data(), MOE_DTYPE_F32, 8, a.data(), MOE_DTYPE_F32,
                            8, 0.f, c.data(), MOE_DTYPE_F32, 8),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(be().ops().gemm(be().handle(), 0, 1, 4, 8, 8, 1.f, nullptr, MOE_DTYPE_F32, 8, a.data(), MOE_DTYPE_F32, 8,
                            0.f, c.data(), MOE_DTYPE_F32, 8),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(be().ops().gemm(be().handle(), 0, 1, 4, 8, 8, 1.f, a.data(), MOE_DTYPE_F32, 8, a.data(), MOE_DTYPE_F32, 8,
                            0.f, c.data(), MOE_DTYPE_I32, 8),
            MOE_ERR_UNSUPPORTED);
  take_plugin_error();
}

}  // namespace
}  // namespace moe::testing
