// moe_permute, expert_mlp, moe_unpermute, alone and chained into a MoE layer.
#include <cmath>

#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class ExpertsTest : public BackendTest {
 protected:
  void poison_permute_outputs(int64_t rows, int64_t dim, int experts) {
    poison_next_allocations({static_cast<size_t>(rows * dim) * 4, static_cast<size_t>(experts + 1) * 8,
                             static_cast<size_t>(rows) * 4});
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(ExpertsTest);

// Expert 3 gets no rows; token 4 sends both copies to one expert.
const std::vector<int32_t> kIds = {0, 2, 4, 1, 2, 0, 1, 4, 2, 2, 0, 4, 1, 0};
constexpr int64_t kTokens = 7, kTopK = 2, kDim = 19;
constexpr int kExperts = 5;

TEST_P(ExpertsTest, PermuteGroupsRowsByExpertInTokenOrder) {
  auto x = random_floats(kTokens * kDim, 91);
  Tensor tx = upload_f32(x, {kTokens, kDim});
  Tensor tids = upload_i32(kIds, {kTokens, kTopK});
  poison_permute_outputs(kTokens * kTopK, kDim, kExperts);
  ops::Permuted p = ops::moe_permute(tx, tids, kExperts);
  reference::Permuted want = reference::moe_permute(x, kDim, kIds, kTopK, kExperts);
  EXPECT_EQ(p.offsets.to_vector<int64_t>(), want.offsets);
  EXPECT_EQ(p.source.to_vector<int32_t>(), want.source);
  EXPECT_EQ(p.x_sorted.to_vector<float>(), want.x_sorted);
}

TEST_P(ExpertsTest, PermuteRejectsExpertIdOutOfRange) {
  std::vector<int32_t> ids = kIds;
  ids[7] = kExperts;
  Tensor tx = upload_f32(random_floats(kTokens * kDim, 1), {kTokens, kDim});
  EXPECT_TRUE(fails_with([&] { ops::moe_permute(tx, upload_i32(ids, {kTokens, kTopK}), kExperts); },
                         MOE_ERR_INVALID_ARGUMENT, {"ids[3, 1]", "5"}));
}

TEST_P(ExpertsTest, ExpertMlpOverRaggedExperts) {
  // Rows per expert: 0 (skipped), 1 and 3 (small-M paths), 6, 13, 40 and 150 (matmul paths, which the
  // CPU backend pads to 8, 16, 40 and 160 rows).
  const std::vector<int64_t> offsets = {0, 0, 1, 4, 10, 23, 63, 213};
  const int64_t experts = 7, rows = 213;
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
      for (auto [dim, width] : {std::pair<int64_t, int64_t>{19, 24}, std::pair<int64_t, int64_t>{64, 96}}) {
        SCOPED_TRACE(::testing::Message() << "weights " << wt << " activation " << act << " dim " << dim << " width "
                                          << width);
        auto x = random_floats(rows * dim, 101);
        float w_scale = 2.f / std::sqrt(static_cast<float>(dim));
        auto gate_up = rounded_if_bf16(random_floats(experts * 2 * width * dim, 102, -w_scale, w_scale), wt);
        auto down = rounded_if_bf16(random_floats(experts * dim * width, 103, -w_scale, w_scale), wt);
        Tensor tx = upload_f32(x, {rows, dim});
        Tensor toff = Tensor::from_host(be(), MOE_DTYPE_I64, {experts + 1}, offsets.data());
        Tensor tgu = upload_float(gate_up, wt, {experts, 2 * width, dim});
        Tensor tdown = upload_float(down, wt, {experts, dim, width});
        poison_next_allocations({static_cast<size_t>(rows * dim) * 4});
        Tensor y = ops::expert_mlp(tx, toff, tgu, tdown, act);
        EXPECT_TRUE(close_to(download_f32(y), reference::expert_mlp(x, dim, offsets, gate_up, down, width, act),
                             tolerance_for(wt)));
      }
    }
  }
}

TEST_P(ExpertsTest, UnpermuteWeightsAndAccumulates) {
  reference::Permuted p = reference::moe_permute(random_floats(kTokens * kDim, 111), kDim, kIds, kTopK, kExperts);
  auto y_sorted = random_floats(kTokens * kTopK * kDim, 112);
  auto weights = random_floats(kTokens * kTopK, 113, 0.f, 1.f);
  auto residual = random_floats(kTokens * kDim, 114);
  for (bool accumulate : {false, true}) {
    SCOPED_TRACE(accumulate ? "accumulate" : "overwrite");
    Tensor out = accumulate ? upload_f32(residual, {kTokens, kDim}) : poisoned(MOE_DTYPE_F32, {kTokens, kDim});
    ops::moe_unpermute(upload_f32(y_sorted, {kTokens * kTopK, kDim}), upload_i32(p.source, {kTokens * kTopK}),
                       upload_f32(weights, {kTokens, kTopK}), accumulate, out);
    std::vector<double> want = to_double(residual);
    reference::moe_unpermute(y_sorted, kDim, p.source, weights, kTopK, accumulate, want);
    EXPECT_TRUE(close_to(download_f32(out), want, kF32Tolerance));
  }
}

TEST_P(ExpertsTest, UnpermuteRejectsASourceThatIsNotAPermutation) {
  std::vector<int32_t> source(kTokens * kTopK);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<int32_t>(i);
  source[5] = 4;  // 4 twice, 5 missing
  Tensor out = poisoned(MOE_DTYPE_F32, {kTokens, kDim});
  EXPECT_TRUE(fails_with(
      [&] {
        ops::moe_unpermute(upload_f32(random_floats(kTokens * kTopK * kDim, 1), {kTokens * kTopK, kDim}),
                           upload_i32(source, {kTokens * kTopK}), upload_f32(random_floats(kTokens * kTopK, 2),
                                                                              {kTokens, kTopK}),
                           false, out);
      },
      MOE_ERR_INVALID_ARGUMENT, {"source[5]", "twice"}));
}

// Router -> permute -> experts -> unpermute against the same chain of references.
TEST_P(ExpertsTest, MoeLayerChain) {
  const int64_t tokens = 37, dim = 32, width = 48;
  const int experts = 8, top_k = 2;
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    SCOPED_TRACE(::testing::Message() << "weights " << wt);
    auto x = random_floats(tokens * dim, 121);
    auto logits = random_floats(tokens * experts, 122, -2.f, 2.f);
    auto gate_up = rounded_if_bf16(random_floats(experts * 2 * width * dim, 123, -0.3f, 0.3f), wt);
    auto down = rounded_if_bf16(random_floats(experts * dim * width, 124, -0.3f, 0.3f), wt);
    auto residual = random_floats(tokens * dim, 125);

    Tensor tx = upload_f32(x, {tokens, dim});
    ops::Routing routing = ops::route_softmax_topk(upload_f32(logits, {tokens, experts}), top_k, true);
    ops::Permuted p = ops::moe_permute(tx, routing.ids, experts);
    Tensor y = ops::expert_mlp(p.x_sorted, p.offsets, upload_float(gate_up, wt, {experts, 2 * width, dim}),
                               upload_float(down, wt, {experts, dim, width}), MOE_ACT_SILU);
    Tensor out = upload_f32(residual, {tokens, dim});
    ops::moe_unpermute(y, p.source, routing.weights, true, out);

    reference::Routing r = reference::route_softmax_topk(logits, tokens, experts, top_k, true);
    reference::Permuted rp = reference::moe_permute(x, dim, r.ids, top_k, experts);
    std::vector<double> ry = reference::expert_mlp(rp.x_sorted, dim, rp.offsets, gate_up, down, width, MOE_ACT_SILU);
    std::vector<float> ry_f(ry.begin(), ry.end());
    std::vector<float> rw(r.weights.begin(), r.weights.end());
    std::vector<double> want = to_double(residual);
    reference::moe_unpermute(ry_f, dim, rp.source, rw, top_k, true, want);
    EXPECT_TRUE(close_to(download_f32(out), want, tolerance_for(wt)));
  }
}

}  // namespace
}  // namespace moe::testing
