// expert_mlp_unpermute (plugin ABI 1.5): the routed experts and the weighted combination of their outputs in
// one op must give, bit for bit, what expert_mlp and moe_unpermute give called one after the other (both are
// tested against the double-precision reference in their own suites): y_sorted and out. Eager calls against
// the eager ops, recorded ones against the two ops recorded (a recorded decode step of one token is where a
// backend may combine inside the down product's kernel; the CUDA backend's is switched by
// MOE_CUDA_FUSED_DECODE, so the recorded rounds run with it on and off), f32 and bf16 experts, top 2 and top 8,
// with and without accumulation, one token and several, and argument errors. Backends without the entry skip.
#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

struct ExpertCase {
  const char* name;
  int64_t tokens, dim, width, experts;
  int top_k;
  moe_dtype w_type;
  bool accumulate;
};

const ExpertCase kCases[] = {
    {"decode, Mixtral-like", 1, 256, 352, 16, 2, MOE_DTYPE_BF16, true},
    {"decode, top 8 of 64, f32 experts", 1, 64, 96, 64, 8, MOE_DTYPE_F32, true},
    {"decode, overwriting out", 1, 128, 64, 8, 2, MOE_DTYPE_BF16, false},
    {"decode, widths the vector loads do not take", 1, 44, 36, 8, 2, MOE_DTYPE_BF16, true},
    {"a few tokens", 3, 64, 48, 8, 2, MOE_DTYPE_BF16, true},
    {"no tokens", 0, 64, 48, 8, 2, MOE_DTYPE_F32, true},
};

class ExpertMlpUnpermuteTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_expert_mlp_unpermute())
      GTEST_SKIP() << "backend '" << be().name() << "' has no expert_mlp_unpermute (plugin ABI 1.5)";
  }

  // A MoE layer's dispatched rows (moe_permute of seeded rows by a softmax router's choice), its experts and the
  // residual the outputs are added to.
  struct Inputs {
    Tensor x, gate_up, down, residual;
    ops::Routing routing;
    ops::Permuted permuted;
  };
  Inputs inputs(const ExpertCase& c, uint32_t& seed) {
    Inputs in;
    in.x = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.dim), seed++), {c.tokens, c.dim});
    const Tensor logits =
        upload_f32(random_floats(static_cast<size_t>(c.tokens * c.experts), seed++, -2.f, 2.f), {c.tokens, c.experts});
    in.routing = ops::route_softmax_topk(logits, c.top_k, true);
    in.permuted = ops::moe_permute(in.x, in.routing.ids, static_cast<int>(c.experts));
    const float scale = 1.f / 8.f;
    auto weights = [&](int64_t count) {
      return rounded_if_bf16(random_floats(static_cast<size_t>(count), seed++, -scale, scale), c.w_type);
    };
    in.gate_up = upload_float(weights(c.experts * 2 * c.width * c.dim), c.w_type, {c.experts, 2 * c.width, c.dim});
    in.down = upload_float(weights(c.experts * c.dim * c.width), c.w_type, {c.experts, c.dim, c.width});
    in.residual = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.dim), seed++), {c.tokens, c.dim});
    return in;
  }
  static std::vector<float> host_values(const Tensor& t) { return t.to_vector<float>(); }

  moe_status call_raw(const Inputs& in, bool accumulate, Tensor& y, Tensor& out) {
    moe_tensor xr = in.permuted.x_sorted.ref(), orf = in.permuted.offsets.ref(), gr = in.gate_up.ref(),
               dr = in.down.ref(), sr = in.permuted.source.ref(), wr = in.routing.weights.ref(), yr = y.ref(),
               outr = out.ref();
    return be().ops().expert_mlp_unpermute(be().handle(), &xr, &orf, &gr, &dr, MOE_ACT_SILU, &sr, &wr,
                                           accumulate ? 1 : 0, &yr, &outr);
  }
  moe_status separately_raw(const Inputs& in, bool accumulate, Tensor& y, Tensor& out) {
    moe_tensor xr = in.permuted.x_sorted.ref(), orf = in.permuted.offsets.ref(), gr = in.gate_up.ref(),
               dr = in.down.ref(), sr = in.permuted.source.ref(), wr = in.routing.weights.ref(), yr = y.ref(),
               outr = out.ref();
    const moe_status s = be().ops().expert_mlp(be().handle(), &xr, &orf, &gr, &dr, MOE_ACT_SILU, &yr);
    if (s != MOE_OK) return s;
    return be().ops().moe_unpermute(be().handle(), &yr, &sr, &wr, accumulate ? 1 : 0, &outr);
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(ExpertMlpUnpermuteTest);

TEST_P(ExpertMlpUnpermuteTest, EagerCallMatchesTheTwoOpsBitForBit) {
  uint32_t seed = 1100;
  for (const ExpertCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Inputs in = inputs(c, seed);
    Tensor got = upload_f32(host_values(in.residual), {c.tokens, c.dim});
    Tensor want = upload_f32(host_values(in.residual), {c.tokens, c.dim});
    ops::expert_mlp_unpermute(in.permuted.x_sorted, in.permuted.offsets, in.gate_up, in.down, MOE_ACT_SILU,
                              in.permuted.source, in.routing.weights, c.accumulate, got);
    ops::moe_unpermute(ops::expert_mlp(in.permuted.x_sorted, in.permuted.offsets, in.gate_up, in.down, MOE_ACT_SILU),
                       in.permuted.source, in.routing.weights, c.accumulate, want);
    EXPECT_TRUE(same_bits(got, want, "out"));
  }
}

// Recorded, then replayed on new dispatched rows (a decode step's next token): each replay must match a
// recording of the two ops replayed on the same rows, y_sorted and out (out starts from the same residual).
TEST_P(ExpertMlpUnpermuteTest, RecordedCallMatchesTheTwoOpsRecorded) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  uint32_t seed = 1200;
  with_fused_decode_off_and_on([&](const char*) {
    for (const ExpertCase& c : kCases) {
      SCOPED_TRACE(c.name);
      Inputs in = inputs(c, seed);
      const int64_t rows = c.tokens * c.top_k;
      Tensor y_one = poisoned(MOE_DTYPE_F32, {rows, c.dim}), y_two = poisoned(MOE_DTYPE_F32, {rows, c.dim});
      Tensor out_one = upload_f32(host_values(in.residual), {c.tokens, c.dim});
      Tensor out_two = upload_f32(host_values(in.residual), {c.tokens, c.dim});
      moe_recorded_step* one =
          record([&] { return call_raw(in, c.accumulate, y_one, out_one); }, "expert_mlp_unpermute");
      moe_recorded_step* two =
          record([&] { return separately_raw(in, c.accumulate, y_two, out_two); }, "expert_mlp and moe_unpermute");
      for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(::testing::Message() << "replay " << round);
        const std::vector<float> values = random_floats(static_cast<size_t>(rows * c.dim), seed++);
        if (!values.empty()) in.permuted.x_sorted.copy_from_host(values.data(), values.size() * sizeof(float));
        replay_both(one, two);
        EXPECT_TRUE(same_bits(y_one, y_two, "y_sorted"));
        EXPECT_TRUE(same_bits(out_one, out_two, "out"));  // accumulated over the replays alike
      }
      be().ops().destroy_step(be().handle(), one);
      be().ops().destroy_step(be().handle(), two);
    }
  });
}

TEST_P(ExpertMlpUnpermuteTest, BadArgumentsNameWhatIsWrong) {
  uint32_t seed = 1300;
  const ExpertCase c{"", 1, 16, 8, 4, 2, MOE_DTYPE_F32, true};
  Inputs in = inputs(c, seed);
  auto raw = [&](const Inputs& i, Tensor y, Tensor out) {
    be().check(call_raw(i, true, y, out), "expert_mlp_unpermute");
  };
  auto y = [&] { return poisoned(MOE_DTYPE_F32, {2, 16}); };
  auto out = [&] { return upload_f32(host_values(in.residual), {1, 16}); };
  Tensor fine_y = y(), fine_out = out();
  EXPECT_EQ(call_raw(in, true, fine_y, fine_out), MOE_OK);  // the well-formed call the broken ones alter
  EXPECT_TRUE(fails_with(
      [&] {
        raw(in, y(), poisoned(MOE_DTYPE_F32, {1, 15}));
      },
      MOE_ERR_INVALID_ARGUMENT, {"out [1, 15]"}));
  EXPECT_TRUE(fails_with(
      [&] {
        raw(in, poisoned(MOE_DTYPE_F32, {2, 15}), out());
      },
      MOE_ERR_INVALID_ARGUMENT, {"[2, 15]"}));
  Tensor shared = upload_f32(random_floats(32, 1), {2, 16});
  EXPECT_TRUE(fails_with([&] { raw(in, shared, shared.slice(0, 1)); }, MOE_ERR_INVALID_ARGUMENT, {"must not overlap"}));
  Inputs wrong_down = in;
  wrong_down.down = upload_f32(random_floats(4 * 16 * 7, 2), {4, 16, 7});
  EXPECT_TRUE(fails_with([&] { raw(wrong_down, y(), out()); }, MOE_ERR_INVALID_ARGUMENT, {"down [4, 16, 7]"}));
  // The core's wrapper refuses mismatched shapes before the backend sees it.
  Tensor short_out = upload_f32(random_floats(15, 3), {1, 15});
  EXPECT_TRUE(fails_with(
      [&] {
        ops::expert_mlp_unpermute(in.permuted.x_sorted, in.permuted.offsets, in.gate_up, in.down, MOE_ACT_SILU,
                                  in.permuted.source, in.routing.weights, true, short_out);
      },
      MOE_ERR_INTERNAL, {"expert_mlp_unpermute", "out [1, 15]"}));
}

}  // namespace
}  // namespace moe::testing
