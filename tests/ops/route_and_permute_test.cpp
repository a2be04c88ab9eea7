// route_and_permute (plugin ABI 1.5): a MoE layer's input norm, router product, routing and dispatch in one
// op must give, bit for bit, what rmsnorm (where a norm is given), gemm, route_softmax_topk /
// route_sigmoid_group_topk and moe_permute give called one after the other (those are tested against the
// double-precision reference in their own suites). Eager calls against the eager ops, recorded ones against
// the ops recorded (a recorded decode step is where a backend may run the op as one kernel; the CUDA
// backend's is switched by MOE_CUDA_FUSED_DECODE, so the recorded rounds run with it on and off), with and
// without the norm (f32 and bf16 norm weights), f32 and bf16 routers, both router kinds, token counts on
// both sides of a one-block kernel, and argument errors. Backends without the entry skip.
#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

// A case's norm: the dtype of its weight (f32 or bf16), or kNoNorm for a call without one.
constexpr moe_dtype kNoNorm = MOE_DTYPE_I32;

struct DispatchCase {
  const char* name;
  int64_t tokens, dim, experts;
  int top_k;
  moe_dtype router_type;
  bool sigmoid;
  int n_group, topk_group;
  bool bias;
  float scaling;
  moe_dtype norm = kNoNorm;
};

const DispatchCase kCases[] = {
    {"decode, Mixtral-like", 1, 1024, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
    {"decode, Mixtral-like, with its norm", 1, 1024, 16, 2, MOE_DTYPE_BF16, false, 1, 1, false, 1.f, MOE_DTYPE_BF16},
    {"a few tokens, bf16 router", 3, 40, 8, 2, MOE_DTYPE_BF16, false, 1, 1, false, 1.f},
    {"a few tokens, f32 norm", 3, 40, 8, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f, MOE_DTYPE_F32},
    {"top 6 of 64, with a norm", 5, 64, 64, 6, MOE_DTYPE_BF16, false, 1, 1, false, 1.f, MOE_DTYPE_BF16},
    {"more tokens than one block takes", 40, 64, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
    {"more tokens than one block takes, with a norm", 40, 64, 16, 2, MOE_DTYPE_BF16, false, 1, 1, false, 1.f,
     MOE_DTYPE_F32},
    {"sigmoid groups with bias", 2, 64, 32, 4, MOE_DTYPE_F32, true, 4, 2, true, 2.5f},
    {"sigmoid groups with bias and a norm", 16, 64, 32, 4, MOE_DTYPE_F32, true, 4, 2, true, 2.5f, MOE_DTYPE_BF16},
    {"sigmoid, one group, no bias", 4, 56, 16, 2, MOE_DTYPE_BF16, true, 1, 1, false, 1.f},
    {"no tokens", 0, 64, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
    {"no tokens, with a norm", 0, 64, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f, MOE_DTYPE_F32},
};

class RouteAndPermuteTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_route_and_permute())
      GTEST_SKIP() << "backend '" << be().name() << "' has no route_and_permute (plugin ABI 1.4)";
  }

  struct Inputs {
    Tensor x, router, bias, norm;
    ops::InputNorm input_norm() const { return norm.defined() ? ops::InputNorm{&norm, kEps} : ops::InputNorm{}; }
  };
  static constexpr float kEps = 1e-5f;
  // Seeded x (rows of varied scale, as a residual stream has), router (of the case's dtype), bias and norm
  // weight of a case; `seed` moves past the draws.
  Inputs inputs(const DispatchCase& c, uint32_t& seed) {
    Inputs in;
    in.x = upload_f32(x_values(c, seed), {c.tokens, c.dim});
    in.router = upload_float(rounded_if_bf16(random_floats(static_cast<size_t>(c.experts * c.dim), seed++),
                                             c.router_type),
                             c.router_type, {c.experts, c.dim});
    in.bias = upload_f32(random_floats(static_cast<size_t>(c.experts), seed++, -0.1f, 0.1f), {c.experts});
    const std::vector<float> norm = random_floats(static_cast<size_t>(c.dim), seed++, 0.5f, 1.5f);
    if (c.norm != kNoNorm) in.norm = upload_float(rounded_if_bf16(norm, c.norm), c.norm, {c.dim});
    return in;
  }
  static std::vector<float> x_values(const DispatchCase& c, uint32_t& seed) {
    std::vector<float> x = random_floats(static_cast<size_t>(c.tokens * c.dim), seed++);
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int64_t j = 0; j < c.dim; ++j) x[t * c.dim + j] *= static_cast<float>(1 + 3 * t);
    return x;
  }

  ops::RouterSpec spec_of(const DispatchCase& c, const Tensor* bias) {
    return ops::RouterSpec{c.sigmoid, bias, c.n_group, c.topk_group, c.top_k, true, c.scaling};
  }

  // The ops in turn.
  ops::Dispatch separately(const Tensor& x, const ops::InputNorm& norm, const Tensor& router,
                           const ops::RouterSpec& s) {
    const Tensor h = norm.weight ? ops::rmsnorm(x, *norm.weight, norm.eps) : x;
    ops::Dispatch d;
    d.logits = ops::linear(h, router);
    d.routing = s.sigmoid ? ops::route_sigmoid_group_topk(d.logits, s.bias, s.n_group, s.topk_group, s.top_k,
                                                          s.normalize, s.scaling)
                          : ops::route_softmax_topk(d.logits, s.top_k, s.normalize);
    d.permuted = ops::moe_permute(h, d.routing.ids, static_cast<int>(router.dim(0)));
    return d;
  }

  // Outputs allocated (and poisoned) by the test, for raw calls; h: the norm's output.
  struct Outputs : ops::Dispatch {
    Tensor h;
  };
  Outputs outputs(const DispatchCase& c) {
    const int64_t rows = c.tokens * c.top_k;
    Outputs d;
    d.h = poisoned(MOE_DTYPE_F32, {c.tokens, c.dim});
    d.logits = poisoned(MOE_DTYPE_F32, {c.tokens, c.experts});
    d.routing = {poisoned(MOE_DTYPE_I32, {c.tokens, c.top_k}), poisoned(MOE_DTYPE_F32, {c.tokens, c.top_k})};
    d.permuted = {poisoned(MOE_DTYPE_F32, {rows, c.dim}), poisoned(MOE_DTYPE_I64, {c.experts + 1}),
                  poisoned(MOE_DTYPE_I32, {rows})};
    return d;
  }

  // The ops through the table into d's outputs: the first failure's status.
  moe_status separately_raw(const Tensor& x, const Tensor* norm, const Tensor& router, const ops::RouterSpec& s,
                            Outputs& d) {
    const int64_t tokens = x.dim(0), dim = x.dim(1), experts = router.dim(0);
    moe_tensor xr = x.ref(), nr = norm ? norm->ref() : moe_tensor{}, normed = d.h.ref();
    if (norm) {
      const moe_status st = be().ops().rmsnorm(be().handle(), &xr, &nr, kEps, &normed);
      if (st != MOE_OK) return st;
    }
    const Tensor& h = norm ? d.h : x;
    moe_status st = be().ops().gemm(be().handle(), 0, 1, tokens, experts, dim, 1.f, h.data(), MOE_DTYPE_F32, dim,
                                    router.data(), router.dtype(), dim, 0.f, d.logits.data(), MOE_DTYPE_F32, experts);
    if (st != MOE_OK) return st;
    moe_tensor lr = d.logits.ref(), ir = d.routing.ids.ref(), wr = d.routing.weights.ref(), hr = h.ref(),
               sorted = d.permuted.x_sorted.ref(), orf = d.permuted.offsets.ref(), sr = d.permuted.source.ref();
    moe_tensor br = s.bias ? s.bias->ref() : moe_tensor{};
    st = s.sigmoid ? be().ops().route_sigmoid_group_topk(be().handle(), &lr, s.bias ? &br : nullptr, s.n_group,
                                                         s.topk_group, s.top_k, s.normalize ? 1 : 0, s.scaling, &ir,
                                                         &wr)
                   : be().ops().route_softmax_topk(be().handle(), &lr, s.top_k, s.normalize ? 1 : 0, &ir, &wr);
    if (st != MOE_OK) return st;
    return be().ops().moe_permute(be().handle(), &hr, &ir, static_cast<int32_t>(experts), &sorted, &orf, &sr);
  }

  moe_status call_raw(const Tensor& x, const Tensor* norm, const Tensor& router, const ops::RouterSpec& s, Outputs& d) {
    moe_tensor xr = x.ref(), nr = norm ? norm->ref() : moe_tensor{}, hr = d.h.ref(), rr = router.ref(),
               lr = d.logits.ref(), ir = d.routing.ids.ref(), wr = d.routing.weights.ref(),
               sorted = d.permuted.x_sorted.ref(), orf = d.permuted.offsets.ref(), sr = d.permuted.source.ref();
    moe_tensor br = s.bias ? s.bias->ref() : moe_tensor{};
    return be().ops().route_and_permute(be().handle(), &xr, norm ? &nr : nullptr, kEps, norm ? &hr : nullptr, &rr,
                                        s.sigmoid ? 1 : 0, s.bias ? &br : nullptr, s.n_group, s.topk_group, s.top_k,
                                        s.normalize ? 1 : 0, s.scaling, &lr, &ir, &wr, &sorted, &orf, &sr);
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(RouteAndPermuteTest);

TEST_P(RouteAndPermuteTest, EagerCallMatchesTheThreeOpsBitForBit) {
  uint32_t seed = 700;
  for (const DispatchCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Inputs in = inputs(c, seed);
    const ops::RouterSpec s = spec_of(c, c.bias ? &in.bias : nullptr);
    expect_same_dispatch(ops::route_and_permute(in.x, in.input_norm(), in.router, s),
                         separately(in.x, in.input_norm(), in.router, s));
  }
}

// Recorded, then replayed on new values of x (a decode step's next token): each replay must match a
// recording of the ops replayed on the same values (a backend may compute a recorded product otherwise than
// an eager one, as the CUDA backend does; what must agree is the op with its parts).
TEST_P(RouteAndPermuteTest, RecordedCallMatchesTheOpsRecorded) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  uint32_t seed = 800;
  with_fused_decode_off_and_on([&](const char*) {
    for (const DispatchCase& c : kCases) {
      SCOPED_TRACE(c.name);
      Inputs in = inputs(c, seed);
      const Tensor* norm = in.norm.defined() ? &in.norm : nullptr;
      const ops::RouterSpec s = spec_of(c, c.bias ? &in.bias : nullptr);
      Outputs got = outputs(c), want = outputs(c);
      moe_recorded_step* one = record([&] { return call_raw(in.x, norm, in.router, s, got); }, "route_and_permute");
      moe_recorded_step* ops = record([&] { return separately_raw(in.x, norm, in.router, s, want); }, "the ops");
      for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(::testing::Message() << "replay " << round);
        const std::vector<float> values = x_values(c, seed);
        if (!values.empty()) in.x.copy_from_host(values.data(), values.size() * sizeof(float));
        replay_both(one, ops);
        expect_same_dispatch(got, want);
        if (norm) {
          EXPECT_TRUE(same_bits(got.h, want.h, "h"));
        }
      }
      be().ops().destroy_step(be().handle(), one);
      be().ops().destroy_step(be().handle(), ops);
    }
  });
}

TEST_P(RouteAndPermuteTest, BadArgumentsNameWhatIsWrong) {
  const DispatchCase c{"", 2, 16, 8, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f};
  Tensor x = upload_f32(random_floats(32, 1), {2, 16});
  Tensor router = upload_f32(random_floats(128, 2), {8, 16});
  Tensor bias = upload_f32(random_floats(8, 3), {8});
  Tensor norm = upload_f32(random_floats(16, 7, 0.5f, 1.5f), {16});
  const ops::RouterSpec s = spec_of(c, nullptr);
  auto raw = [&](const Tensor& xx, const Tensor* nn, const Tensor& rr, const ops::RouterSpec& spec, Outputs d) {
    be().check(call_raw(xx, nn, rr, spec, d), "route_and_permute");
  };
  EXPECT_TRUE(fails_with(
      [&] {
        raw(upload_f32(random_floats(34, 4), {2, 17}), nullptr, router, s, outputs(c));
      },
      MOE_ERR_INVALID_ARGUMENT, {"router [8, 16]", "x [2, 17]"}));
  EXPECT_TRUE(fails_with(
      [&] {
        raw(upload_bf16(round_to_bf16(random_floats(32, 5)), {2, 16}), nullptr, router, s, outputs(c));
      },
      MOE_ERR_UNSUPPORTED, {"x", "bf16"}));
  Outputs bad_logits = outputs(c);
  bad_logits.logits = poisoned(MOE_DTYPE_F32, {2, 7});
  EXPECT_TRUE(fails_with([&] { raw(x, nullptr, router, s, bad_logits); }, MOE_ERR_INVALID_ARGUMENT, {"logits [2, 7]"}));
  ops::RouterSpec softmax_with_bias = s;
  softmax_with_bias.bias = &bias;
  EXPECT_TRUE(fails_with([&] { raw(x, nullptr, router, softmax_with_bias, outputs(c)); }, MOE_ERR_INVALID_ARGUMENT,
                         {"bias", "softmax"}));
  ops::RouterSpec too_many = s;
  too_many.top_k = 9;
  EXPECT_TRUE(fails_with(
      [&] {
        raw(x, nullptr, router, too_many,
            outputs(DispatchCase{"", 2, 16, 8, 9, MOE_DTYPE_F32, false, 1, 1, false, 1.f}));
      },
      MOE_ERR_INVALID_ARGUMENT, {"top_k=9"}));
  Outputs bad_ids = outputs(c);
  bad_ids.routing.ids = poisoned(MOE_DTYPE_I32, {2, 3});
  EXPECT_TRUE(fails_with([&] { raw(x, nullptr, router, s, bad_ids); }, MOE_ERR_INVALID_ARGUMENT, {"ids [2, 3]"}));
  Outputs bad_offsets = outputs(c);
  bad_offsets.permuted.offsets = poisoned(MOE_DTYPE_I64, {8});
  EXPECT_TRUE(fails_with([&] { raw(x, nullptr, router, s, bad_offsets); }, MOE_ERR_INVALID_ARGUMENT, {"offsets [8]"}));
  // The norm: its weight must be [dim], h x's shape and not x itself.
  Outputs fine = outputs(c);  // a well-formed call with a norm, for the broken ones below
  EXPECT_EQ(call_raw(x, &norm, router, s, fine), MOE_OK);
  EXPECT_TRUE(fails_with([&] { raw(x, &bias, router, s, outputs(c)); }, MOE_ERR_INVALID_ARGUMENT, {"weight [8]"}));
  Outputs bad_h = outputs(c);
  bad_h.h = poisoned(MOE_DTYPE_F32, {2, 15});
  EXPECT_TRUE(fails_with([&] { raw(x, &norm, router, s, bad_h); }, MOE_ERR_INVALID_ARGUMENT, {"h [2, 15]"}));
  Outputs h_is_x = outputs(c);
  h_is_x.h = x;
  EXPECT_TRUE(
      fails_with([&] { raw(x, &norm, router, s, h_is_x); }, MOE_ERR_INVALID_ARGUMENT, {"h and x must not overlap"}));
  // The core's wrapper refuses a mismatched router or norm before the backend sees it.
  EXPECT_TRUE(fails_with(
      [&] {
        ops::route_and_permute(x, {}, upload_f32(random_floats(136, 6), {8, 17}), s);
      },
      MOE_ERR_INTERNAL, {"route_and_permute", "router [8, 17]"}));
  EXPECT_TRUE(fails_with(
      [&] {
        ops::route_and_permute(x, ops::InputNorm{&bias, kEps}, router, s);
      },
      MOE_ERR_INTERNAL, {"route_and_permute", "norm weight [8]"}));
}

}  // namespace
}  // namespace moe::testing
