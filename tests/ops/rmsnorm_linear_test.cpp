// rmsnorm_linear (plugin ABI 1.5): a norm and the product that reads its output, in one op. It must give, bit
// for bit, what rmsnorm and gemm give called one after the other (both h and y), and so be as close to the
// double-precision reference as they are. Eager calls against the eager ops, recorded ones against the two
// ops recorded (a recorded decode step is where a backend may run the op as one kernel; the CUDA backend's
// is switched by MOE_CUDA_FUSED_DECODE, so the recorded rounds run with it on and off), f32 and bf16 weights
// and norm weights, row counts on both sides of the CUDA backend's small-row kernel, widths its vector loads
// do and do not take, and argument errors. Backends without the entry skip.
#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

struct NormProductCase {
  const char* name;
  int64_t rows, dim, n;
  moe_dtype w_type, norm_type;
};

const NormProductCase kCases[] = {
    {"decode q/k/v, seed-1.2B-like", 1, 1024, 3072, MOE_DTYPE_BF16, MOE_DTYPE_BF16},
    {"LM head of a few rows", 3, 256, 1000, MOE_DTYPE_BF16, MOE_DTYPE_F32},
    {"f32 weights", 4, 64, 48, MOE_DTYPE_F32, MOE_DTYPE_F32},
    {"the small-row kernel's last row count", 16, 128, 40, MOE_DTYPE_BF16, MOE_DTYPE_BF16},
    {"one row more than it takes", 17, 128, 40, MOE_DTYPE_BF16, MOE_DTYPE_F32},
    {"a width its vector loads do not take", 2, 44, 24, MOE_DTYPE_BF16, MOE_DTYPE_BF16},
    {"one output", 2, 64, 1, MOE_DTYPE_F32, MOE_DTYPE_BF16},
    {"no rows", 0, 64, 32, MOE_DTYPE_BF16, MOE_DTYPE_BF16},
};

constexpr float kEps = 1e-5f;

class RmsnormLinearTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_rmsnorm_linear())
      GTEST_SKIP() << "backend '" << be().name() << "' has no rmsnorm_linear (plugin ABI 1.5)";
  }

  struct Inputs {
    std::vector<float> x, norm, w;
    Tensor tx, tnorm, tw;
  };
  // Rows of varied scale (a residual stream's), a norm weight near 1 and the weights, in the case's dtypes.
  Inputs inputs(const NormProductCase& c, uint32_t& seed) {
    Inputs in;
    in.x = x_values(c, seed);
    in.norm = rounded_if_bf16(random_floats(static_cast<size_t>(c.dim), seed++, 0.5f, 1.5f), c.norm_type);
    in.w = rounded_if_bf16(random_floats(static_cast<size_t>(c.n * c.dim), seed++), c.w_type);
    in.tx = upload_f32(in.x, {c.rows, c.dim});
    in.tnorm = upload_float(in.norm, c.norm_type, {c.dim});
    in.tw = upload_float(in.w, c.w_type, {c.n, c.dim});
    return in;
  }
  static std::vector<float> x_values(const NormProductCase& c, uint32_t& seed) {
    std::vector<float> x = random_floats(static_cast<size_t>(c.rows * c.dim), seed++);
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t j = 0; j < c.dim; ++j) x[r * c.dim + j] *= static_cast<float>(1 + 5 * r);
    return x;
  }

  moe_status call_raw(const Tensor& x, const Tensor& norm, const Tensor& w, Tensor& h, Tensor& y) {
    moe_tensor xr = x.ref(), nr = norm.ref(), wr = w.ref(), hr = h.ref(), yr = y.ref();
    return be().ops().rmsnorm_linear(be().handle(), &xr, &nr, kEps, &wr, &hr, &yr);
  }
  moe_status separately_raw(const Tensor& x, const Tensor& norm, const Tensor& w, Tensor& h, Tensor& y) {
    moe_tensor xr = x.ref(), nr = norm.ref(), hr = h.ref();
    const moe_status s = be().ops().rmsnorm(be().handle(), &xr, &nr, kEps, &hr);
    if (s != MOE_OK) return s;
    const int64_t rows = x.dim(0), dim = x.dim(1), n = w.dim(0);
    return be().ops().gemm(be().handle(), 0, 1, rows, n, dim, 1.f, h.data(), MOE_DTYPE_F32, dim, w.data(), w.dtype(),
                           dim, 0.f, y.data(), MOE_DTYPE_F32, n);
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(RmsnormLinearTest);

TEST_P(RmsnormLinearTest, EagerCallMatchesRmsnormThenGemmAndTheReference) {
  uint32_t seed = 900;
  for (const NormProductCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Inputs in = inputs(c, seed);
    const Tensor y = ops::rmsnorm_linear(in.tx, in.tnorm, kEps, in.tw);
    EXPECT_TRUE(same_bits(y, ops::linear(ops::rmsnorm(in.tx, in.tnorm, kEps), in.tw), "y"));
    if (c.rows == 0) continue;  // nothing to compare beyond the shape
    // The reference: the normed rows (as f32, then as the product's dtype sees them) times the weights.
    const std::vector<double> h = reference::rmsnorm(in.x, in.norm, kEps);
    std::vector<float> h_f32(h.begin(), h.end());
    std::vector<double> want(static_cast<size_t>(c.rows * c.n), 0.0);
    reference::gemm(false, true, c.rows, c.n, c.dim, 1.0, h_f32, c.dim, in.w, c.dim, 0.0, want, c.n);
    EXPECT_TRUE(close_to(download_f32(y), want, tolerance_for(c.w_type)));
  }
}

// Recorded, then replayed on new rows (a decode step's next token): each replay must match a recording of
// rmsnorm and gemm replayed on the same rows, h and y.
TEST_P(RmsnormLinearTest, RecordedCallMatchesTheTwoOpsRecorded) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  uint32_t seed = 1000;
  with_fused_decode_off_and_on([&](const char*) {
    for (const NormProductCase& c : kCases) {
      SCOPED_TRACE(c.name);
      Inputs in = inputs(c, seed);
      Tensor h_one = poisoned(MOE_DTYPE_F32, {c.rows, c.dim}), y_one = poisoned(MOE_DTYPE_F32, {c.rows, c.n});
      Tensor h_two = poisoned(MOE_DTYPE_F32, {c.rows, c.dim}), y_two = poisoned(MOE_DTYPE_F32, {c.rows, c.n});
      moe_recorded_step* one = record([&] { return call_raw(in.tx, in.tnorm, in.tw, h_one, y_one); }, "rmsnorm_linear");
      moe_recorded_step* two =
          record([&] { return separately_raw(in.tx, in.tnorm, in.tw, h_two, y_two); }, "rmsnorm and gemm");
      for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(::testing::Message() << "replay " << round);
        const std::vector<float> values = x_values(c, seed);
        if (!values.empty()) in.tx.copy_from_host(values.data(), values.size() * sizeof(float));
        replay_both(one, two);
        EXPECT_TRUE(same_bits(h_one, h_two, "h"));
        EXPECT_TRUE(same_bits(y_one, y_two, "y"));
      }
      be().ops().destroy_step(be().handle(), one);
      be().ops().destroy_step(be().handle(), two);
    }
  });
}

TEST_P(RmsnormLinearTest, BadArgumentsNameWhatIsWrong) {
  Tensor x = upload_f32(random_floats(32, 1), {2, 16});
  Tensor norm = upload_f32(random_floats(16, 2, 0.5f, 1.5f), {16});
  Tensor w = upload_f32(random_floats(128, 3), {8, 16});
  auto raw = [&](const Tensor& xx, const Tensor& nn, const Tensor& ww, Tensor h, Tensor y) {
    be().check(call_raw(xx, nn, ww, h, y), "rmsnorm_linear");
  };
  auto h = [&] { return poisoned(MOE_DTYPE_F32, {2, 16}); };
  auto y = [&] { return poisoned(MOE_DTYPE_F32, {2, 8}); };
  EXPECT_TRUE(fails_with(
      [&] {
        raw(x, norm, upload_f32(random_floats(136, 4), {8, 17}), h(), y());
      },
      MOE_ERR_INVALID_ARGUMENT, {"w [8, 17]", "x [2, 16]"}));
  EXPECT_TRUE(fails_with([&] { raw(x, upload_f32(random_floats(15, 5), {15}), w, h(), y()); }, MOE_ERR_INVALID_ARGUMENT,
                         {"norm_weight [15]"}));
  EXPECT_TRUE(fails_with(
      [&] {
        raw(upload_bf16(round_to_bf16(random_floats(32, 6)), {2, 16}), norm, w, h(), y());
      },
      MOE_ERR_UNSUPPORTED, {"x", "bf16"}));
  EXPECT_TRUE(fails_with(
      [&] {
        raw(x, norm, w, poisoned(MOE_DTYPE_F32, {2, 15}), y());
      },
      MOE_ERR_INVALID_ARGUMENT, {"h [2, 15]"}));
  EXPECT_TRUE(fails_with(
      [&] {
        raw(x, norm, w, h(), poisoned(MOE_DTYPE_F32, {2, 7}));
      },
      MOE_ERR_INVALID_ARGUMENT, {"y [2, 7]"}));
  EXPECT_TRUE(fails_with([&] { raw(x, norm, w, x, y()); }, MOE_ERR_INVALID_ARGUMENT, {"must not overlap"}));
  Tensor both = poisoned(MOE_DTYPE_F32, {2, 16});
  EXPECT_TRUE(fails_with(
      [&] {
        raw(x, norm, w, both, both.slice(0, 1).view({2, 8}));
      },
      MOE_ERR_INVALID_ARGUMENT, {"must not overlap"}));
  Tensor fine_h = h(), fine_y = y();
  EXPECT_EQ(call_raw(x, norm, w, fine_h, fine_y), MOE_OK);  // the well-formed call the broken ones alter
  // The core's wrapper refuses mismatched shapes before the backend sees it.
  EXPECT_TRUE(fails_with(
      [&] {
        ops::rmsnorm_linear(x, norm, kEps, upload_f32(random_floats(136, 7), {8, 17}));
      },
      MOE_ERR_INTERNAL, {"rmsnorm_linear", "w [8, 17]"}));
}

}  // namespace
}  // namespace moe::testing
