// Routers: top-k choice and weights, ties towards the lower id, DeepSeek-V3 group limiting.
#include <cmath>

#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class RoutingTest : public BackendTest {
 protected:
  // Both router outputs are [tokens, top_k] of 4-byte elements: two poisoned blocks of that size.
  void poison_router_outputs(int64_t tokens, int top_k) {
    size_t bytes = static_cast<size_t>(tokens * top_k) * 4;
    poison_next_allocations({bytes, bytes});
  }

  void expect_routing(const ops::Routing& got, const reference::Routing& want) {
    EXPECT_EQ(got.ids.to_vector<int32_t>(), want.ids);
    EXPECT_TRUE(close_to(got.weights.to_vector<float>(), want.weights, kF32Tolerance));
  }

  ops::Routing sigmoid_route(const std::vector<float>& logits, const std::vector<float>& bias, int64_t tokens,
                             int64_t experts, int n_group, int topk_group, int top_k, bool normalize, float scaling) {
    Tensor tl = upload_f32(logits, {tokens, experts});
    Tensor tb = bias.empty() ? Tensor() : upload_f32(bias, {experts});
    poison_router_outputs(tokens, top_k);
    return ops::route_sigmoid_group_topk(tl, bias.empty() ? nullptr : &tb, n_group, topk_group, top_k, normalize,
                                         scaling);
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(RoutingTest);

TEST_P(RoutingTest, SoftmaxTopK) {
  for (auto [experts, top_k] : {std::pair{16, 2}, std::pair{8, 3}, std::pair{5, 5}, std::pair{1, 1}}) {
    for (bool normalize : {true, false}) {
      SCOPED_TRACE(::testing::Message() << experts << " experts, top " << top_k << (normalize ? ", normalized" : ""));
      const int64_t tokens = 9;
      auto logits = random_floats(tokens * experts, 71, -4.f, 4.f);
      Tensor tl = upload_f32(logits, {tokens, experts});
      poison_router_outputs(tokens, top_k);
      expect_routing(ops::route_softmax_topk(tl, top_k, normalize),
                     reference::route_softmax_topk(logits, tokens, experts, top_k, normalize));
    }
  }
}

TEST_P(RoutingTest, SoftmaxTiesGoToTheLowerId) {
  std::vector<float> logits = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f,   // all equal
                               1.f,  3.f,  3.f,  2.f,  3.f};  // three-way tie at the top
  Tensor tl = upload_f32(logits, {2, 5});
  poison_router_outputs(2, 3);
  ops::Routing r = ops::route_softmax_topk(tl, 3, true);
  EXPECT_EQ(r.ids.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 1, 2, 4}));
  expect_routing(r, reference::route_softmax_topk(logits, 2, 5, 3, true));
}

TEST_P(RoutingTest, SigmoidGroupTopK) {
  struct Case {
    int64_t experts;
    int n_group, topk_group, top_k;
    bool bias, normalize;
    float scaling;
  };
  for (const Case& c : {Case{16, 4, 2, 4, true, true, 2.5f}, Case{16, 4, 2, 4, false, false, 1.f},
                        Case{16, 16, 5, 3, true, true, 1.f}, Case{12, 1, 1, 6, true, true, 1.f},
                        Case{256, 8, 4, 8, true, true, 2.5f}}) {
    SCOPED_TRACE(::testing::Message() << c.experts << " experts in " << c.n_group << " groups, top " << c.topk_group
                                      << " groups, top " << c.top_k);
    const int64_t tokens = 11;
    auto logits = random_floats(tokens * c.experts, 81, -3.f, 3.f);
    std::vector<float> bias = c.bias ? random_floats(c.experts, 82, -0.2f, 0.2f) : std::vector<float>{};
    expect_routing(sigmoid_route(logits, bias, tokens, c.experts, c.n_group, c.topk_group, c.top_k, c.normalize,
                                 c.scaling),
                   reference::route_sigmoid_group_topk(logits, bias, tokens, c.experts, c.n_group, c.topk_group,
                                                       c.top_k, c.normalize, c.scaling));
  }
}

// Expert 0 has the best single score, but its group's score (sum of its two best) loses to groups 1
// and 2, so it must not be chosen. With a bias that makes every choice value negative, a masked
// expert still must not come back (a masked-to-zero implementation would pick it).
TEST_P(RoutingTest, SigmoidMaskedGroupsAreExcluded) {
  std::vector<float> logits = {5.f, -5.f, 2.f, 2.f, 1.5f, 1.5f, 0.f, 0.f};
  for (float bias_value : {0.f, -5.f}) {
    SCOPED_TRACE(::testing::Message() << "bias " << bias_value);
    std::vector<float> bias(8, bias_value);
    ops::Routing r = sigmoid_route(logits, bias, 1, 8, 4, 2, 2, true, 1.f);
    EXPECT_EQ(r.ids.to_vector<int32_t>(), (std::vector<int32_t>{2, 3}));
    expect_routing(r, reference::route_sigmoid_group_topk(logits, bias, 1, 8, 4, 2, 2, true, 1.0));
  }
}

TEST_P(RoutingTest, SigmoidTiesGoToTheLowerGroupAndId) {
  std::vector<float> logits(16, 0.25f);
  ops::Routing r = sigmoid_route(logits, {}, 1, 16, 4, 2, 3, false, 1.f);
  EXPECT_EQ(r.ids.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2}));
  expect_routing(r, reference::route_sigmoid_group_topk(logits, {}, 1, 16, 4, 2, 3, false, 1.0));
}

}  // namespace
}  // namespace moe::testing
