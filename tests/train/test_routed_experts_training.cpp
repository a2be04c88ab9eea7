// One MoE layer's routed experts as training runs them, against a plain double-precision reference
// written from the definitions: expert capacity (Switch Transformer token dropping) in both the
// softmax (Mixtral) and sigmoid (DeepSeek-V3) routers, and LoRA adapters on the routed experts'
// weights. The forward pass matches the reference, and every gradient the tape produces matches
// central finite differences of the reference at a point whose routing has no near-ties (so the
// small perturbations never change which experts are chosen or which assignments are dropped).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>

#include "context.h"
#include "../common/core_test_context.h"
#include "train/functions.h"

namespace moe {
namespace {

constexpr int64_t kTokens = 10, kDim = 6, kFf = 5, kExperts = 4, kRank = 2;
constexpr int kTopK = 2;

// The layer's inputs, as doubles (the reference's) and as the f32 values the backend gets.
struct Layer {
  std::vector<double> h, router, gate_up, down, residual, bias, lora_a[2], lora_b[2];
  bool sigmoid = false, lora = false;
  float scaling = 1.f, capacity_factor = 0.f, lora_scale = 1.5f;
};

std::vector<double> random_values(size_t n, double scale, std::mt19937& rng) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  // Rounded to f32 so that the reference and the backend start from the same numbers.
  for (auto& x : v) x = static_cast<float>(normal(rng));
  return v;
}

Layer make_layer(bool sigmoid, bool lora, uint32_t seed) {
  std::mt19937 rng(seed);
  Layer l;
  l.sigmoid = sigmoid;
  l.lora = lora;
  l.scaling = sigmoid ? 2.5f : 1.f;
  l.h = random_values(kTokens * kDim, 1.0, rng);
  l.router = random_values(kExperts * kDim, 0.7, rng);
  // Expert 0 is popular, so that it overflows its capacity.
  for (int64_t d = 0; d < kDim; ++d) l.router[d] += 0.4 * (l.h[d] > 0 ? 1 : -1);
  l.gate_up = random_values(kExperts * 2 * kFf * kDim, 0.5, rng);
  l.down = random_values(kExperts * kDim * kFf, 0.5, rng);
  l.residual = random_values(kTokens * kDim, 1.0, rng);
  if (sigmoid) l.bias = random_values(kExperts, 0.1, rng);
  if (lora) {
    l.lora_a[0] = random_values(kExperts * kRank * kDim, 0.4, rng);
    l.lora_b[0] = random_values(kExperts * 2 * kFf * kRank, 0.4, rng);
    l.lora_a[1] = random_values(kExperts * kRank * kFf, 0.4, rng);
    l.lora_b[1] = random_values(kExperts * kDim * kRank, 0.4, rng);
  }
  return l;
}

struct Routed {
  std::vector<int> ids;         // [tokens, top_k]
  std::vector<double> weights;  // [tokens, top_k], zero where dropped
  int64_t dropped = 0;
  double min_gap = INFINITY;    // smallest distance between a chosen and an unchosen score
};

// The router from its definition: softmax top-k (normalised) or sigmoid + bias top-k (normalised,
// scaled); then capacity in token order.
Routed route(const Layer& l, const std::vector<double>& h, const std::vector<double>& router) {
  Routed r;
  std::vector<int64_t> taken(kExperts, 0);
  const int64_t capacity = l.capacity_factor > 0 ? static_cast<int64_t>(std::ceil(
                                                       static_cast<double>(l.capacity_factor) * kTokens * kTopK / kExperts))
                                                 : kTokens * kTopK;
  for (int64_t t = 0; t < kTokens; ++t) {
    std::vector<double> logit(kExperts), score(kExperts), choice(kExperts);
    for (int64_t e = 0; e < kExperts; ++e) {
      for (int64_t d = 0; d < kDim; ++d) logit[e] += h[t * kDim + d] * router[e * kDim + d];
    }
    if (l.sigmoid) {
      for (int64_t e = 0; e < kExperts; ++e) {
        score[e] = 1 / (1 + std::exp(-logit[e]));
        choice[e] = score[e] + l.bias[e];
      }
    } else {
      const double mx = *std::max_element(logit.begin(), logit.end());
      double sum = 0;
      for (int64_t e = 0; e < kExperts; ++e) sum += score[e] = std::exp(logit[e] - mx);
      for (int64_t e = 0; e < kExperts; ++e) choice[e] = score[e] /= sum;
    }
    std::vector<int> order(kExperts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return choice[a] > choice[b]; });
    r.min_gap = std::min(r.min_gap, choice[order[kTopK - 1]] - choice[order[kTopK]]);
    double sum = 0;
    for (int j = 0; j < kTopK; ++j) sum += score[order[j]];
    for (int j = 0; j < kTopK; ++j) {
      const int e = order[j];
      double w = score[e] / (l.sigmoid ? sum + 1e-20 : sum) * (l.sigmoid ? l.scaling : 1.0);
      if (++taken[e] > capacity) {
        w = 0;
        ++r.dropped;
      }
      r.ids.push_back(e);
      r.weights.push_back(w);
    }
  }
  return r;
}

struct Params {
  std::vector<double> h, router, gate_up, down, residual, lora_a[2], lora_b[2];
};

Params params_of(const Layer& l) {
  Params p{l.h, l.router, l.gate_up, l.down, l.residual, {l.lora_a[0], l.lora_a[1]}, {l.lora_b[0], l.lora_b[1]}};
  return p;
}

// w + scale * b a per expert, for w [experts, out, in], a [experts, rank, in], b [experts, out, rank].
std::vector<double> adapted(const std::vector<double>& w, const std::vector<double>& a, const std::vector<double>& b,
                            int64_t out, int64_t in, double scale) {
  std::vector<double> r = w;
  for (int64_t e = 0; e < kExperts; ++e)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        for (int64_t k = 0; k < kRank; ++k)
          r[(e * out + o) * in + i] += scale * b[(e * out + o) * kRank + k] * a[(e * kRank + k) * in + i];
  return r;
}

// The layer's output: residual + sum over kept assignments of weight * expert MLP (SwiGLU).
std::vector<double> layer_output(const Layer& l, const Params& p) {
  Routed r = route(l, p.h, p.router);
  const std::vector<double> gu =
      l.lora ? adapted(p.gate_up, p.lora_a[0], p.lora_b[0], 2 * kFf, kDim, l.lora_scale) : p.gate_up;
  const std::vector<double> dn = l.lora ? adapted(p.down, p.lora_a[1], p.lora_b[1], kDim, kFf, l.lora_scale) : p.down;
  std::vector<double> y = p.residual;
  for (int64_t t = 0; t < kTokens; ++t)
    for (int j = 0; j < kTopK; ++j) {
      const int e = r.ids[t * kTopK + j];
      const double w = r.weights[t * kTopK + j];
      if (w == 0) continue;
      std::vector<double> act(kFf);
      for (int64_t f = 0; f < kFf; ++f) {
        double g = 0, u = 0;
        for (int64_t d = 0; d < kDim; ++d) {
          g += gu[(e * 2 * kFf + f) * kDim + d] * p.h[t * kDim + d];
          u += gu[(e * 2 * kFf + kFf + f) * kDim + d] * p.h[t * kDim + d];
        }
        act[f] = g / (1 + std::exp(-g)) * u;
      }
      for (int64_t d = 0; d < kDim; ++d) {
        double v = 0;
        for (int64_t f = 0; f < kFf; ++f) v += dn[(e * kDim + d) * kFf + f] * act[f];
        y[t * kDim + d] += w * v;
      }
    }
  return y;
}

// The scalar whose gradients are checked: sum(output * probe).
double loss(const Layer& l, const Params& p, const std::vector<double>& probe) {
  std::vector<double> y = layer_output(l, p);
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * probe[i];
  return s;
}

Tensor to_backend(Backend& be, const std::vector<double>& v, Shape shape) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_host(be, MOE_DTYPE_F32, std::move(shape), f.data());
}

ad::Var trained(Backend& be, const std::vector<double>& v, Shape shape) {
  return ad::parameter(to_backend(be, v, shape), std::make_shared<Tensor>(Tensor::zeros(be, MOE_DTYPE_F32, shape)));
}

struct Result {
  std::vector<float> y;
  int64_t dropped = 0;
  // Gradients in Params order: h, router, gate_up, down, residual, lora a/b (gate_up, down).
  std::vector<std::vector<float>> grads;
};

Result run_layer(Backend& be, const Layer& l, const std::vector<double>& probe) {
  ad::Tape tape;
  ad::Var h = trained(be, l.h, {kTokens, kDim}), router = trained(be, l.router, {kExperts, kDim});
  ad::Var gate_up = trained(be, l.gate_up, {kExperts, 2 * kFf, kDim}), down = trained(be, l.down, {kExperts, kDim, kFf});
  ad::Var residual = trained(be, l.residual, {kTokens, kDim});
  std::vector<ad::Var> vars = {h, router, gate_up, down, residual};
  ad::Var gu = gate_up, dn = down;
  if (l.lora) {
    // Under LoRA the base weights are constants; only the adapters train.
    gu = ad::constant(gate_up.value);
    dn = ad::constant(down.value);
    ad::Var a0 = trained(be, l.lora_a[0], {kExperts, kRank, kDim}), b0 = trained(be, l.lora_b[0], {kExperts, 2 * kFf, kRank});
    ad::Var a1 = trained(be, l.lora_a[1], {kExperts, kRank, kFf}), b1 = trained(be, l.lora_b[1], {kExperts, kDim, kRank});
    gu = ad::lora_weight(&tape, gu, a0, b0, l.lora_scale);
    dn = ad::lora_weight(&tape, dn, a1, b1, l.lora_scale);
    vars.insert(vars.end(), {a0, a1, b0, b1});
  }
  ad::MoeRouting r;
  r.sigmoid = l.sigmoid;
  r.top_k = kTopK;
  r.normalize = true;
  r.scaling = l.scaling;
  r.num_experts = static_cast<int>(kExperts);
  r.activation = MOE_ACT_SILU;
  r.capacity_factor = l.capacity_factor;
  Tensor bias;
  if (l.sigmoid) bias = to_backend(be, l.bias, {kExperts});
  ad::MoeOutput out = ad::routed_experts(&tape, h, router, l.sigmoid ? &bias : nullptr, gu, dn, r, residual);
  ad::accumulate(out.y, to_backend(be, probe, {kTokens, kDim}));
  tape.backward();
  Result res;
  res.y = out.y.value.to_vector<float>();
  res.dropped = out.dropped;
  for (const auto& v : vars) res.grads.push_back(v.grad->to_vector<float>());
  return res;
}

// Each gradient against central differences of the reference loss (all elements; the layer is small).
void check_gradients(const Layer& l, const Result& got, const std::vector<double>& probe) {
  Params base = params_of(l);
  std::vector<std::vector<double>*> slots = {&base.h, &base.router, &base.gate_up, &base.down, &base.residual};
  std::vector<const char*> names = {"h", "router", "gate_up", "down", "residual"};
  if (l.lora) {
    slots.insert(slots.end(), {&base.lora_a[0], &base.lora_a[1], &base.lora_b[0], &base.lora_b[1]});
    names.insert(names.end(), {"gate_up lora_A", "down lora_A", "gate_up lora_B", "down lora_B"});
  }
  ASSERT_EQ(got.grads.size(), slots.size());
  const double step = 1e-6;
  for (size_t s = 0; s < slots.size(); ++s) {
    if (l.lora && (s == 2 || s == 3)) continue;  // frozen base weights (checked to stay zero)
    std::vector<double>& values = *slots[s];
    ASSERT_EQ(got.grads[s].size(), values.size()) << names[s];
    double largest = 0, worst = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const double keep = values[i];
      values[i] = keep + step;
      const double up = loss(l, base, probe);
      values[i] = keep - step;
      const double down = loss(l, base, probe);
      values[i] = keep;
      const double fd = (up - down) / (2 * step);
      largest = std::max(largest, std::fabs(fd));
      worst = std::max(worst, std::fabs(fd - got.grads[s][i]));
    }
    EXPECT_GT(largest, 0) << names[s] << ": no gradient at all";
    EXPECT_LE(worst, 2e-5 * std::max(1.0, largest)) << names[s] << ": largest gradient " << largest;
  }
}

class RoutedExpertsTraining : public ::testing::TestWithParam<bool> {};  // true: sigmoid (DeepSeek-V3) router

TEST_P(RoutedExpertsTraining, CapacityDropsLateAssignmentsExactlyAndTheBackwardAgrees) {
  auto ctx = moe::testing::core_test_context();
  Layer l = make_layer(GetParam(), false, 7);
  l.capacity_factor = 0.5f;  // capacity ceil(0.5 * 10 * 2 / 4) = 3 per expert
  std::mt19937 rng(3);
  std::vector<double> probe = random_values(kTokens * kDim, 1.0, rng);
  Routed r = route(l, l.h, l.router);
  ASSERT_GT(r.min_gap, 1e-3) << "the test point has a near-tie in its routing";
  ASSERT_GT(r.dropped, 0) << "the test point drops nothing";
  // Some token keeps one expert and loses the other: the case where the router's gradient must
  // come through the kept assignment only.
  bool partial = false;
  for (int64_t t = 0; t < kTokens; ++t) partial |= (r.weights[t * kTopK] == 0) != (r.weights[t * kTopK + 1] == 0);
  ASSERT_TRUE(partial);

  Result got = run_layer(ctx->backend(), l, probe);
  EXPECT_EQ(got.dropped, r.dropped);
  std::vector<double> want = layer_output(l, params_of(l));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.y[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i]))) << i;
  check_gradients(l, got, probe);

  // Without capacity the same layer gives another output: the drops above were real.
  Layer dropless = l;
  dropless.capacity_factor = 0;
  Result full = run_layer(ctx->backend(), dropless, probe);
  EXPECT_EQ(full.dropped, 0);
  EXPECT_NE(full.y, got.y);
  // A capacity no expert reaches is exactly dropless.
  Layer roomy = l;
  roomy.capacity_factor = 2.0f;  // capacity 10 = every token
  Result same = run_layer(ctx->backend(), roomy, probe);
  EXPECT_EQ(same.dropped, 0);
  EXPECT_EQ(same.y, full.y);
  EXPECT_EQ(same.grads, full.grads);
}

TEST_P(RoutedExpertsTraining, LoraOnRoutedExpertsMatchesTheReferenceAndFiniteDifferences) {
  auto ctx = moe::testing::core_test_context();
  Layer l = make_layer(GetParam(), true, 11);
  std::mt19937 rng(5);
  std::vector<double> probe = random_values(kTokens * kDim, 1.0, rng);
  ASSERT_GT(route(l, l.h, l.router).min_gap, 1e-3) << "the test point has a near-tie in its routing";
  Result got = run_layer(ctx->backend(), l, probe);
  std::vector<double> want = layer_output(l, params_of(l));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.y[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i]))) << i;
  check_gradients(l, got, probe);
  // The base weights are constants under LoRA: the gradient slots given to them stay zero.
  for (size_t s : {2, 3})
    for (float g : got.grads[s]) ASSERT_EQ(g, 0.f);
}

TEST(ExpertCapacity, IsTheCeilingOfTheShare) {
  EXPECT_EQ(ad::expert_capacity(1.25f, 8, 2, 4), 5);  // exactly 5: not pushed to 6 by rounding
  EXPECT_EQ(ad::expert_capacity(1.0f, 10, 2, 4), 5);
  EXPECT_EQ(ad::expert_capacity(0.5f, 10, 2, 4), 3);
  EXPECT_EQ(ad::expert_capacity(0.01f, 3, 1, 8), 1);
}

INSTANTIATE_TEST_SUITE_P(Routers, RoutedExpertsTraining, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("sigmoid") : std::string("softmax"); });

}  // namespace
}  // namespace moe
