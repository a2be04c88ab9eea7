// The trainer on whole models (the reference fixtures, mixtral and deepseek_v3) with the routed-expert
// features: expert capacity (dropping assignments past an expert's capacity) and LoRA adapters on the
// routed experts. The layer-level arithmetic of both is checked against a double-precision reference
// in test_routed_experts_training.cpp; here: what the trainer reports and trains, end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "base/error.h"
#include "context.h"
#include "../common/core_test_context.h"
#include "model/model.h"
#include "model/weight_table.h"
#include "train/trainer.h"

namespace moe {
namespace {

std::unique_ptr<Model> load_f32(const std::string& name) {
  LoadOptions lo;
  lo.dtype = MOE_DTYPE_F32;
  return Model::load(moe::testing::core_test_context(), std::string(MOE_REFERENCE_DIR) + "/" + name, lo);
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& x : ids) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return ids;
}

// Every weight of the model, copied to the host, in weight-table order.
std::vector<std::vector<float>> snapshot(Model& m) {
  std::vector<std::vector<float>> all;
  for (const WeightEntry& e : weight_table(m.config(), m.mutable_weights()))
    if (e.target->defined()) all.push_back(e.target->to_vector<float>());
  return all;
}

class TrainerExperts : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainerExperts, AmpleCapacityIsDroplessBitForBitAndSmallCapacityDropsWhatTheLoadsSay) {
  const int64_t batch = 4, seq = 12, tokens = batch * seq;
  auto ids = random_ids(tokens, 320, 21);
  auto run = [&](float capacity_factor, std::vector<StepStats>& stats) {
    auto m = load_f32(GetParam());
    TrainerOptions o;
    o.lr = 3e-3f;
    o.capacity_factor = capacity_factor;
    Trainer t(*m, o);
    for (int i = 0; i < 2; ++i) stats.push_back(t.step(ids.data(), nullptr, batch, seq));
    return snapshot(*m);
  };
  std::vector<StepStats> dropless, ample, small;
  auto w_dropless = run(0.f, dropless);
  auto w_ample = run(100.f, ample);  // capacity 100x the even share: never reached
  for (size_t i = 0; i < dropless.size(); ++i) {
    EXPECT_EQ(ample[i].loss, dropless[i].loss);
    EXPECT_EQ(ample[i].grad_norm, dropless[i].grad_norm);
    EXPECT_EQ(ample[i].dropped_fraction, 0.0);
  }
  EXPECT_TRUE(w_ample == w_dropless) << "weights after two steps differ from the dropless run";

  const float factor = 0.5f;
  auto w_small = run(factor, small);
  // What the routers chose (before drops) says how many assignments each expert had to drop.
  auto m = load_f32(GetParam());
  const ModelConfig& c = m->config();
  const int64_t capacity = ad::expert_capacity(factor, tokens, static_cast<int>(c.experts_per_token),
                                               static_cast<int>(c.num_experts));
  for (const StepStats& s : small) {
    ASSERT_FALSE(s.expert_load.empty());
    int64_t over = 0;
    for (const auto& layer : s.expert_load)
      for (int64_t load : layer) over += std::max<int64_t>(0, load - capacity);
    const double expected =
        static_cast<double>(over) / (static_cast<double>(s.expert_load.size()) * tokens * c.experts_per_token);
    EXPECT_GT(expected, 0) << "capacity " << capacity << " drops nothing on this batch";
    EXPECT_DOUBLE_EQ(s.dropped_fraction, expected);
  }
  EXPECT_NE(small[0].loss, dropless[0].loss);
  EXPECT_FALSE(w_small == w_dropless);
}

TEST_P(TrainerExperts, CapacityAppliesToEvaluationAsToSteps) {
  auto m = load_f32(GetParam());
  TrainerOptions o;
  o.capacity_factor = 0.5f;
  Trainer t(*m, o);
  auto ids = random_ids(48, 320, 4);
  StepStats e = t.evaluate(ids.data(), nullptr, 4, 12);
  StepStats s = t.step(ids.data(), nullptr, 4, 12);  // the same weights: the same routing and loss
  EXPECT_GT(e.dropped_fraction, 0);
  EXPECT_EQ(e.dropped_fraction, s.dropped_fraction);
  EXPECT_EQ(e.loss, s.loss);
}

// The logits of one sequence with the trainer's LoRA adapters applied unmerged (as training sees them).
std::vector<float> adapted_logits(Model& m, const Trainer& t, const std::vector<int32_t>& ids) {
  TrainingPass pass;
  for (const WeightEntry& e : weight_table(m.config(), m.mutable_weights())) {
    const std::string name = e.fused_name.empty() ? e.parts.front().name : e.fused_name;
    const Trainer::Param *a = nullptr, *b = nullptr;
    for (const Trainer::Param* p : t.parameters()) {
      if (p->name == name + ".lora_A") a = p;
      if (p->name == name + ".lora_B") b = p;
    }
    if (a && b)
      pass.lora[e.target->data()] = LoraAdapter{ad::constant(a->value), ad::constant(b->value),
                                                t.options().lora_alpha / static_cast<float>(t.options().lora_rank)};
  }
  EXPECT_FALSE(pass.lora.empty());
  TokenBatch tb;
  for (size_t i = 0; i < ids.size(); ++i) {
    tb.ids.push_back(ids[i]);
    tb.slot.push_back(0);
    tb.position.push_back(static_cast<int32_t>(i));
    tb.logit_rows.push_back(static_cast<int64_t>(i));
  }
  KvCache cache(m.context().backend(), m.config(), 1, static_cast<int64_t>(ids.size()));
  return m.transformer().forward(tb, cache, &pass).to_vector<float>();
}

TEST_P(TrainerExperts, LoraOnRoutedExpertsTrainsAdaptersOnlyAndMergesExactly) {
  auto m = load_f32(GetParam());
  const ModelConfig& c = m->config();
  TrainerOptions o;
  o.lora_rank = 4;
  o.lora_attention = false;
  o.lora_experts = true;
  o.lr = 1e-2f;
  o.grad_accumulation = 2;  // the first micro-batch of a step leaves its gradients in place
  Trainer t(*m, o);
  // Every routed-expert tensor has a stacked adapter, one per expert; nothing but adapters trains.
  int stacked = 0;
  for (const Trainer::Param* p : t.parameters()) {
    ASSERT_NE(p->name.find(".lora_"), std::string::npos) << p->name << " trains although LoRA is on";
    if (p->name.find(".experts.") != std::string::npos) {
      ++stacked;
      ASSERT_EQ(p->value.ndim(), 3) << p->name;
      EXPECT_EQ(p->value.dim(0), c.num_experts) << p->name;
    }
  }
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) moe_layers += c.is_moe_layer(l);
  EXPECT_EQ(stacked, 4 * moe_layers);  // gate_up and down, A and B

  const auto before = snapshot(*m);
  auto ids = random_ids(48, 320, 8);
  const double first = t.evaluate(ids.data(), nullptr, 4, 12).loss;
  for (int i = 0; i < 12; ++i) t.step(ids.data(), nullptr, 4, 12);
  const double trained = t.evaluate(ids.data(), nullptr, 4, 12).loss;
  EXPECT_LT(trained, 0.9 * first);
  EXPECT_TRUE(snapshot(*m) == before) << "a base weight moved under LoRA";

  // One micro-batch: the gradients of half a step. Check the largest element of a routed expert's
  // A and of its B against central differences of the evaluated loss.
  t.step(ids.data(), nullptr, 4, 12);
  for (const char* which : {"experts.gate_up_proj.lora_A", "experts.down_proj.lora_B"}) {
    const Trainer::Param* p = nullptr;
    for (const Trainer::Param* q : t.parameters())
      if (q->name.find(which) != std::string::npos) p = q;
    ASSERT_NE(p, nullptr) << which;
    std::vector<float> grad = p->grad->to_vector<float>(), value = p->value.to_vector<float>();
    size_t at = 0;
    for (size_t i = 0; i < grad.size(); ++i)
      if (std::fabs(grad[i]) > std::fabs(grad[at])) at = i;
    const double analytic = 2.0 * grad[at];  // the step scaled it by 1 / grad_accumulation
    ASSERT_GT(std::fabs(analytic), 1e-3) << which;
    const float h = 1e-2f;
    auto loss_at = [&](float v) {
      std::vector<float> moved = value;
      moved[at] = v;
      Tensor target = p->value;
      target.copy_from_host(moved.data(), moved.size() * sizeof(float));
      return t.evaluate(ids.data(), nullptr, 4, 12).loss;
    };
    const double numeric = (loss_at(value[at] + h) - loss_at(value[at] - h)) / (2.0 * h);
    loss_at(value[at]);
    EXPECT_NEAR(numeric, analytic, 3e-3 * std::fabs(analytic)) << which << " element " << at;
  }

  std::vector<int32_t> probe = {5, 17, 200, 3, 99, 42, 7};
  std::vector<float> unmerged = adapted_logits(*m, t, probe);
  t.merge_lora();
  std::vector<float> merged(unmerged.size());
  const int64_t len = static_cast<int64_t>(probe.size());
  m->forward(probe.data(), &len, 1, false, merged.data(), static_cast<int64_t>(merged.size()));
  double scale = 0, diff = 0;
  for (size_t i = 0; i < merged.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(unmerged[i])));
    diff = std::max(diff, static_cast<double>(std::fabs(merged[i] - unmerged[i])));
  }
  EXPECT_LE(diff, 1e-5 * std::max(1.0, scale)) << "merged logits differ from the adapted model's";
  EXPECT_FALSE(snapshot(*m) == before) << "merging changed no weight";
}

TEST(TrainerExpertsLora, FrozenExpertsKeepNoOpAdaptersAndBf16WeightsTrain) {
  LoadOptions lo;
  lo.dtype = MOE_DTYPE_BF16;  // LoRA leaves the base weights as they are: bf16 experts are adapted in f32
  auto m = Model::load(moe::testing::core_test_context(), std::string(MOE_REFERENCE_DIR) + "/deepseek_v3", lo);
  ASSERT_EQ(m->weights().layers[1].moe.experts_gate_up.dtype(), MOE_DTYPE_BF16);
  TrainerOptions o;
  o.lora_rank = 2;
  o.lora_experts = true;
  o.lr = 1e-2f;
  o.freeze_experts = {0, 3};
  Trainer t(*m, o);
  auto ids = random_ids(48, 320, 12);
  const double first = t.evaluate(ids.data(), nullptr, 4, 12).loss;
  for (int i = 0; i < 6; ++i) t.step(ids.data(), nullptr, 4, 12);
  EXPECT_LT(t.evaluate(ids.data(), nullptr, 4, 12).loss, first);
  int checked = 0, trained_slices = 0;
  for (const Trainer::Param* p : t.parameters()) {
    if (p->value.ndim() != 3 || p->name.find(".lora_B") == std::string::npos) continue;
    std::vector<float> b = p->value.to_vector<float>();
    const size_t per_expert = b.size() / static_cast<size_t>(p->value.dim(0));
    for (int64_t e = 0; e < p->value.dim(0); ++e) {
      bool zero = true;
      for (size_t i = 0; i < per_expert; ++i) zero = zero && b[e * per_expert + i] == 0.f;
      if (e == 0 || e == 3) EXPECT_TRUE(zero) << p->name << ": frozen expert " << e << "'s adapter trained";
      else trained_slices += !zero;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);  // gate_up and down of the two MoE layers
  EXPECT_GT(trained_slices, 8);
}

TEST(TrainerExpertsOptions, NegativeOrNonFiniteCapacityIsRejected) {
  auto m = load_f32("mixtral");
  for (float bad : {-1.f, INFINITY, NAN}) {
    TrainerOptions o;
    o.capacity_factor = bad;
    try {
      Trainer t(*m, o);
      FAIL() << "capacity_factor " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("capacity_factor"), std::string::npos) << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TrainerExperts, ::testing::Values("mixtral", "deepseek_v3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moe
