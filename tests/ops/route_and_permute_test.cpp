// route_and_permute (plugin ABI 1.4): a MoE layer's router product, routing and dispatch in one op must
// give, bit for bit, what gemm, route_softmax_topk / route_sigmoid_group_topk and moe_permute give called
// one after the other (those three are tested against the double-precision reference in their own
// suites). Eager calls against the eager ops, recorded ones against the ops recorded (a recorded decode
// step is where a backend may run the op as one kernel; the CUDA backend's is switched by
// MOE_CUDA_FUSED_DISPATCH, so the recorded rounds run with it on and off), f32 and bf16 routers, both router kinds, token counts on both sides of a one-block
// kernel, and argument errors. Backends without the entry skip.
#include <cstdlib>
#include <cstring>

#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

struct DispatchCase {
  const char* name;
  int64_t tokens, dim, experts;
  int top_k;
  moe_dtype router_type;
  bool sigmoid;
  int n_group, topk_group;
  bool bias;
  float scaling;
};

const DispatchCase kCases[] = {
    {"decode, Mixtral-like", 1, 1024, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
    {"a few tokens, bf16 router", 3, 40, 8, 2, MOE_DTYPE_BF16, false, 1, 1, false, 1.f},
    {"top 6 of 64", 5, 64, 64, 6, MOE_DTYPE_BF16, false, 1, 1, false, 1.f},
    {"more tokens than one block takes", 40, 64, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
    {"sigmoid groups with bias", 2, 64, 32, 4, MOE_DTYPE_F32, true, 4, 2, true, 2.5f},
    {"sigmoid, one group, no bias", 4, 56, 16, 2, MOE_DTYPE_BF16, true, 1, 1, false, 1.f},
    {"no tokens", 0, 64, 16, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f},
};

::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want, const char* name) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << name << ": shape " << shape_string(got.shape()) << " instead of "
                                         << shape_string(want.shape());
  const size_t bytes = got.nbytes();
  std::vector<unsigned char> a(bytes), b(bytes);
  if (bytes) {
    got.copy_to_host(a.data(), bytes);
    want.copy_to_host(b.data(), bytes);
  }
  for (size_t i = 0; i < bytes; ++i)
    if (a[i] != b[i]) return ::testing::AssertionFailure() << name << ": byte " << i << " differs";
  return ::testing::AssertionSuccess();
}

class RouteAndPermuteTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_route_and_permute())
      GTEST_SKIP() << "backend '" << be().name() << "' has no route_and_permute (plugin ABI 1.4)";
  }

  struct Inputs {
    Tensor h, router, bias;
  };
  // Seeded h, router (of the case's dtype) and bias of a case; `seed` moves past the three draws.
  Inputs inputs(const DispatchCase& c, uint32_t& seed) {
    Inputs in;
    in.h = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.dim), seed++), {c.tokens, c.dim});
    in.router = upload_float(rounded_if_bf16(random_floats(static_cast<size_t>(c.experts * c.dim), seed++),
                                             c.router_type),
                             c.router_type, {c.experts, c.dim});
    in.bias = upload_f32(random_floats(static_cast<size_t>(c.experts), seed++, -0.1f, 0.1f), {c.experts});
    return in;
  }

  ops::RouterSpec spec_of(const DispatchCase& c, const Tensor* bias) {
    return ops::RouterSpec{c.sigmoid, bias, c.n_group, c.topk_group, c.top_k, true, c.scaling};
  }

  // The three ops in turn.
  ops::Dispatch separately(const Tensor& h, const Tensor& router, const ops::RouterSpec& s) {
    ops::Dispatch d;
    d.logits = ops::linear(h, router);
    d.routing = s.sigmoid ? ops::route_sigmoid_group_topk(d.logits, s.bias, s.n_group, s.topk_group, s.top_k,
                                                          s.normalize, s.scaling)
                          : ops::route_softmax_topk(d.logits, s.top_k, s.normalize);
    d.permuted = ops::moe_permute(h, d.routing.ids, static_cast<int>(router.dim(0)));
    return d;
  }

  void expect_same(const ops::Dispatch& got, const ops::Dispatch& want) {
    EXPECT_TRUE(same_bits(got.logits, want.logits, "logits"));
    EXPECT_TRUE(same_bits(got.routing.ids, want.routing.ids, "ids"));
    EXPECT_TRUE(same_bits(got.routing.weights, want.routing.weights, "weights"));
    EXPECT_TRUE(same_bits(got.permuted.x_sorted, want.permuted.x_sorted, "x_sorted"));
    EXPECT_TRUE(same_bits(got.permuted.offsets, want.permuted.offsets, "offsets"));
    EXPECT_TRUE(same_bits(got.permuted.source, want.permuted.source, "source"));
  }

  // Outputs allocated (and poisoned) by the test, for raw calls.
  ops::Dispatch outputs(const DispatchCase& c) {
    const int64_t rows = c.tokens * c.top_k;
    ops::Dispatch d;
    d.logits = poisoned(MOE_DTYPE_F32, {c.tokens, c.experts});
    d.routing = {poisoned(MOE_DTYPE_I32, {c.tokens, c.top_k}), poisoned(MOE_DTYPE_F32, {c.tokens, c.top_k})};
    d.permuted = {poisoned(MOE_DTYPE_F32, {rows, c.dim}), poisoned(MOE_DTYPE_I64, {c.experts + 1}),
                  poisoned(MOE_DTYPE_I32, {rows})};
    return d;
  }

  // The three ops through the table into d's outputs: the first failure's status.
  moe_status separately_raw(const Tensor& h, const Tensor& router, const ops::RouterSpec& s, ops::Dispatch& d) {
    const int64_t tokens = h.dim(0), dim = h.dim(1), experts = router.dim(0);
    moe_status st = be().ops().gemm(be().handle(), 0, 1, tokens, experts, dim, 1.f, h.data(), MOE_DTYPE_F32, dim,
                                    router.data(), router.dtype(), dim, 0.f, d.logits.data(), MOE_DTYPE_F32, experts);
    if (st != MOE_OK) return st;
    moe_tensor lr = d.logits.ref(), ir = d.routing.ids.ref(), wr = d.routing.weights.ref(), hr = h.ref(),
               xr = d.permuted.x_sorted.ref(), orf = d.permuted.offsets.ref(), sr = d.permuted.source.ref();
    moe_tensor br = s.bias ? s.bias->ref() : moe_tensor{};
    st = s.sigmoid ? be().ops().route_sigmoid_group_topk(be().handle(), &lr, s.bias ? &br : nullptr, s.n_group,
                                                         s.topk_group, s.top_k, s.normalize ? 1 : 0, s.scaling, &ir,
                                                         &wr)
                   : be().ops().route_softmax_topk(be().handle(), &lr, s.top_k, s.normalize ? 1 : 0, &ir, &wr);
    if (st != MOE_OK) return st;
    return be().ops().moe_permute(be().handle(), &hr, &ir, static_cast<int32_t>(experts), &xr, &orf, &sr);
  }

  // A step holding what `calls` enqueues (which must succeed).
  template <typename Calls>
  moe_recorded_step* record(Calls&& calls) {
    be().check(be().ops().record_begin(be().handle()), "record_begin");
    const moe_status recorded = calls();
    moe_recorded_step* step = nullptr;
    be().check(be().ops().record_end(be().handle(), &step), "record_end");
    be().check(recorded, "route_and_permute");
    return step;
  }

  moe_status call_raw(const Tensor& h, const Tensor& router, const ops::RouterSpec& s, ops::Dispatch& d) {
    moe_tensor hr = h.ref(), rr = router.ref(), lr = d.logits.ref(), ir = d.routing.ids.ref(),
               wr = d.routing.weights.ref(), xr = d.permuted.x_sorted.ref(), orf = d.permuted.offsets.ref(),
               sr = d.permuted.source.ref();
    moe_tensor br = s.bias ? s.bias->ref() : moe_tensor{};
    return be().ops().route_and_permute(be().handle(), &hr, &rr, s.sigmoid ? 1 : 0, s.bias ? &br : nullptr,
                                        s.n_group, s.topk_group, s.top_k, s.normalize ? 1 : 0, s.scaling, &lr, &ir,
                                        &wr, &xr, &orf, &sr);
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(RouteAndPermuteTest);

TEST_P(RouteAndPermuteTest, EagerCallMatchesTheThreeOpsBitForBit) {
  uint32_t seed = 700;
  for (const DispatchCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Inputs in = inputs(c, seed);
    const ops::RouterSpec s = spec_of(c, c.bias ? &in.bias : nullptr);
    expect_same(ops::route_and_permute(in.h, in.router, s), separately(in.h, in.router, s));
  }
}

// Recorded, then replayed on new values of h (a decode step's next token): each replay must match a
// recording of the three ops replayed on the same values (a backend may compute a recorded product
// otherwise than an eager one, as the CUDA backend does; what must agree is the op with its parts).
TEST_P(RouteAndPermuteTest, RecordedCallMatchesTheThreeOpsRecorded) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  uint32_t seed = 800;
  struct Unset {
    ~Unset() { unsetenv("MOE_CUDA_FUSED_DISPATCH"); }  // also when a check throws
  } unset;
  for (const char* fused : {"0", "1"}) {
    setenv("MOE_CUDA_FUSED_DISPATCH", fused, 1);
    for (const DispatchCase& c : kCases) {
      SCOPED_TRACE(::testing::Message() << c.name << ", MOE_CUDA_FUSED_DISPATCH=" << fused);
      Inputs in = inputs(c, seed);
      Tensor &h = in.h, &router = in.router;
      const ops::RouterSpec s = spec_of(c, c.bias ? &in.bias : nullptr);
      ops::Dispatch got = outputs(c), want = outputs(c);
      moe_recorded_step* one = record([&] { return call_raw(h, router, s, got); });
      moe_recorded_step* three = record([&] { return separately_raw(h, router, s, want); });
      for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(::testing::Message() << "replay " << round);
        const std::vector<float> values = random_floats(static_cast<size_t>(c.tokens * c.dim), seed++);
        if (!values.empty()) h.copy_from_host(values.data(), values.size() * sizeof(float));
        be().check(be().ops().replay_step(be().handle(), one), "replay_step");
        be().check(be().ops().replay_step(be().handle(), three), "replay_step");
        be().check(be().ops().synchronize(be().handle()), "synchronize");
        expect_same(got, want);
      }
      be().ops().destroy_step(be().handle(), one);
      be().ops().destroy_step(be().handle(), three);
    }
  }
}

TEST_P(RouteAndPermuteTest, BadArgumentsNameWhatIsWrong) {
  const DispatchCase c{"", 2, 16, 8, 2, MOE_DTYPE_F32, false, 1, 1, false, 1.f};
  Tensor h = upload_f32(random_floats(32, 1), {2, 16});
  Tensor router = upload_f32(random_floats(128, 2), {8, 16});
  Tensor bias = upload_f32(random_floats(8, 3), {8});
  const ops::RouterSpec s = spec_of(c, nullptr);
  auto raw = [&](const Tensor& hh, const Tensor& rr, const ops::RouterSpec& spec, ops::Dispatch d) {
    be().check(call_raw(hh, rr, spec, d), "route_and_permute");
  };
  EXPECT_TRUE(fails_with([&] { raw(upload_f32(random_floats(34, 4), {2, 17}), router, s, outputs(c)); },
                         MOE_ERR_INVALID_ARGUMENT, {"router [8, 16]", "h [2, 17]"}));
  EXPECT_TRUE(fails_with([&] { raw(upload_bf16(round_to_bf16(random_floats(32, 5)), {2, 16}), router, s, outputs(c)); },
                         MOE_ERR_UNSUPPORTED, {"h", "bf16"}));
  ops::Dispatch bad_logits = outputs(c);
  bad_logits.logits = poisoned(MOE_DTYPE_F32, {2, 7});
  EXPECT_TRUE(fails_with([&] { raw(h, router, s, bad_logits); }, MOE_ERR_INVALID_ARGUMENT, {"logits [2, 7]"}));
  ops::RouterSpec softmax_with_bias = s;
  softmax_with_bias.bias = &bias;
  EXPECT_TRUE(fails_with([&] { raw(h, router, softmax_with_bias, outputs(c)); }, MOE_ERR_INVALID_ARGUMENT,
                         {"bias", "softmax"}));
  ops::RouterSpec too_many = s;
  too_many.top_k = 9;
  EXPECT_TRUE(fails_with([&] { raw(h, router, too_many, outputs(DispatchCase{"", 2, 16, 8, 9, MOE_DTYPE_F32, false, 1, 1, false, 1.f})); },
                         MOE_ERR_INVALID_ARGUMENT, {"top_k=9"}));
  ops::Dispatch bad_ids = outputs(c);
  bad_ids.routing.ids = poisoned(MOE_DTYPE_I32, {2, 3});
  EXPECT_TRUE(fails_with([&] { raw(h, router, s, bad_ids); }, MOE_ERR_INVALID_ARGUMENT, {"ids [2, 3]"}));
  ops::Dispatch bad_offsets = outputs(c);
  bad_offsets.permuted.offsets = poisoned(MOE_DTYPE_I64, {8});
  EXPECT_TRUE(fails_with([&] { raw(h, router, s, bad_offsets); }, MOE_ERR_INVALID_ARGUMENT, {"offsets [8]"}));
  // The core's wrapper refuses a mismatched router before the backend sees it.
  EXPECT_TRUE(fails_with([&] { ops::route_and_permute(h, upload_f32(random_floats(136, 6), {8, 17}), s); },
                         MOE_ERR_INTERNAL, {"route_and_permute", "router [8, 17]"}));
}

}  // namespace
}  // namespace moe::testing
