// The trainer through the public C++ API: a run stopped and resumed is bit-identical to one that ran
// straight through; freezing and LoRA train only what they should; bad input is a clear error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/safetensors.h"
#include "moe/moe.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kMixtral = std::string(MOE_REFERENCE_DIR) + "/mixtral";
const std::string kDeepseek = std::string(MOE_REFERENCE_DIR) + "/deepseek_v3";

moe::context cpu() {
  moe::context::options o;
  // The backend under test: MOE_TEST_BACKEND (scripts/gpu-check runs these tests with "cuda"), else cpu.
  const char* backend = std::getenv("MOE_TEST_BACKEND");
  o.backend = backend && *backend ? backend : "cpu";
  o.plugin_dirs = {std::getenv("MOE_PLUGIN_DIR")};
  o.search_default_dirs = false;
  return moe::context(o);
}

moe::model load_f32(const moe::context& ctx, const std::string& dir) {
  moe::model::load_options o;
  o.dtype = MOE_LOAD_DTYPE_F32;
  return moe::model(ctx, dir, o);
}

// A dataset of `n` random sequences of `len` ids below `vocab`.
std::vector<int32_t> random_ids(int64_t n, int64_t len, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n * len));
  for (auto& x : ids) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return ids;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("moe_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

moe_trainer_options busy_options() {
  // Everything that has state between steps: Gumbel noise, cosine schedule with warmup,
  // accumulation, clipping, the auxiliary losses, the selection-bias updates, the expert load (and
  // capacity drops, which depend on all of them).
  moe_trainer_options o = moe::trainer::default_options();
  o.lr = 3e-3f;
  o.weight_decay = 0.01f;
  o.clip_norm = 1.f;
  o.warmup_steps = 2;
  o.total_steps = 8;
  o.schedule = MOE_SCHEDULE_COSINE;
  o.grad_accumulation = 2;
  o.seed = 11;
  o.gating = MOE_GATING_GUMBEL;
  o.gumbel_temperature = 2.f;
  o.gumbel_temperature_final = 0.5f;
  o.sequence_balance_coef = 1e-3f;
  o.z_loss_coef = 1e-3f;
  o.bias_update_speed = 1e-3f;
  o.capacity_factor = 1.f;
  return o;
}

TEST(Trainer, StoppedAndResumedRunIsBitIdentical) {
  moe::context ctx = cpu();
  auto data = random_ids(12, 16, 320, 5);
  fs::path straight = temp_dir("straight"), split = temp_dir("split"), checkpoint = temp_dir("checkpoint");
  {
    moe::model m = load_f32(ctx, kDeepseek);
    moe::trainer t(m, busy_options());
    t.train(data, 12, 16, 3, 8, true);
    t.save(straight.string());
  }
  {
    moe::model m = load_f32(ctx, kDeepseek);
    moe::trainer t(m, busy_options());
    t.train(data, 12, 16, 3, 5, true);
    t.save(checkpoint.string());
  }
  {
    moe::model m = load_f32(ctx, checkpoint.string());
    moe::trainer t(m, busy_options());
    t.resume(checkpoint.string());
    t.train(data, 12, 16, 3, 8, true);
    t.save(split.string());
  }
  for (const char* file : {"model.safetensors", "trainer_state.safetensors", "trainer_state.json"})
    EXPECT_TRUE(read_file(straight / file) == read_file(split / file)) << file << " differs";
  for (const auto& d : {straight, split, checkpoint}) fs::remove_all(d);
}

TEST(Trainer, LossGoesDownOnAFixedBatch) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kMixtral);
  moe_trainer_options o = moe::trainer::default_options();
  o.lr = 3e-3f;
  moe::trainer t(m, o);
  auto ids = random_ids(4, 12, 320, 9);
  double first = t.step(ids, 4, 12).loss, last = first;
  for (int i = 0; i < 15; ++i) last = t.step(ids, 4, 12).loss;
  EXPECT_LT(last, 0.5 * first);
}

TEST(Trainer, FrozenLayersAndExpertsDoNotMove) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kMixtral);
  moe_trainer_options o = moe::trainer::default_options();
  o.freeze_layers_below = 1;
  std::vector<int32_t> experts = {0, 3};
  o.freeze_experts = experts.data();
  o.num_freeze_experts = 2;
  moe::trainer t(m, o);
  auto ids = random_ids(4, 12, 320, 3);
  for (int i = 0; i < 3; ++i) t.step(ids, 4, 12);
  fs::path dir = temp_dir("frozen");
  m.save(dir.string());
  auto before = moe::io::SafetensorsFile::open(kMixtral + "/model.safetensors");
  auto after = moe::io::SafetensorsFile::open((dir / "model.safetensors").string());
  int frozen = 0, moved = 0;
  for (const std::string& name : before->names()) {
    const auto* a = before->find(name);
    const auto* b = after->find(name);
    ASSERT_NE(b, nullptr) << name;
    const bool same = a->nbytes == b->nbytes && std::memcmp(a->data, b->data, a->nbytes) == 0;
    const bool layer0 = name.rfind("model.layers.0.", 0) == 0 || name == "model.embed_tokens.weight";
    const bool frozen_expert = name.find(".experts.0.") != std::string::npos || name.find(".experts.3.") != std::string::npos;
    if (layer0 || frozen_expert) {
      EXPECT_TRUE(same) << name << " moved although frozen";
      ++frozen;
    } else if (name.find(".experts.") != std::string::npos || name.find("layers.1.") != std::string::npos) {
      moved += !same;
    }
  }
  EXPECT_GT(frozen, 10);
  EXPECT_GT(moved, 10);
  fs::remove_all(dir);
}

TEST(Trainer, LoraTrainsAdaptersOnlyAndMerges) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kMixtral);
  moe_trainer_options o = moe::trainer::default_options();
  o.lora_rank = 4;
  o.lr = 1e-2f;
  moe::trainer t(m, o);
  auto ids = random_ids(4, 12, 320, 4);
  auto probe = m.forward({{5, 6, 7}});
  for (int i = 0; i < 4; ++i) t.step(ids, 4, 12);
  // Plain inference does not see the adapters until they are merged.
  EXPECT_EQ(m.forward({{5, 6, 7}}), probe);
  double adapted = t.evaluate(ids, 4, 12).loss;
  t.merge_lora();
  EXPECT_NE(m.forward({{5, 6, 7}}), probe);
  EXPECT_NEAR(t.evaluate(ids, 4, 12).loss, adapted, 1e-4 * adapted);
}

TEST(Trainer, BadInputIsAClearError) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kMixtral);
  moe::trainer t(m, moe::trainer::default_options());
  auto ids = random_ids(2, 8, 320, 1);
  ids[5] = 999;
  try {
    t.step(ids, 2, 8);
    FAIL() << "an out-of-range id was accepted";
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
  moe_train_stats s{};
  s.struct_size = sizeof s;
  EXPECT_EQ(moe_trainer_step(t.get(), ids.data(), nullptr, 0, 8, &s), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moe_last_error_message()).find("empty"), std::string::npos);
  try {
    t.save("/proc/moe_cannot_write_here");
    FAIL() << "saving to an unwritable path succeeded";
  } catch (const moe::error& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/moe_cannot_write_here"), std::string::npos) << e.what();
  }
  moe_trainer_options bad = moe::trainer::default_options();
  bad.lr = -1;
  EXPECT_THROW(moe::trainer(m, bad), moe::error);
}

TEST(Trainer, NonFiniteLossIsReportedAndSkippedOrStops) {
  moe::context ctx = cpu();
  auto ids = random_ids(2, 8, 320, 2);
  for (int32_t policy : {MOE_NAN_SKIP_STEP, MOE_NAN_STOP}) {
    moe::model m = load_f32(ctx, kMixtral);
    moe_trainer_options o = moe::trainer::default_options();
    o.lr = 1e30f;  // the first update blows the weights up; the next loss is not finite
    o.nan_policy = policy;
    moe::trainer t(m, o);
    t.step(ids, 2, 8);
    if (policy == MOE_NAN_SKIP_STEP) {
      moe_train_stats s = t.step(ids, 2, 8);
      EXPECT_EQ(s.skipped, 1);
      EXPECT_FALSE(std::isfinite(s.loss));
    } else {
      try {
        t.step(ids, 2, 8);
        FAIL() << "a non-finite loss did not stop training";
      } catch (const moe::error& e) {
        EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Trainer, ClassificationHeadLearnsASeparableTask) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kMixtral);
  moe_trainer_options o = moe::trainer::default_options();
  o.task = MOE_TASK_SEQUENCE_CLASSIFICATION;
  o.num_labels = 2;
  o.lr = 3e-3f;
  moe::trainer t(m, o);
  // Class = whether the sequence ends in a token below 160.
  auto ids = random_ids(16, 8, 320, 7);
  std::vector<int32_t> labels(16);
  for (int i = 0; i < 16; ++i) labels[i] = ids[i * 8 + 7] < 160 ? 1 : 0;
  double before = t.evaluate(ids, 16, 8, labels).accuracy;
  for (int i = 0; i < 40; ++i) t.step(ids, 16, 8, labels);
  moe_train_stats s = t.evaluate(ids, 16, 8, labels);
  EXPECT_EQ(s.accuracy, 1.0) << "accuracy before training: " << before;
}

TEST(Trainer, GumbelTemperatureAnnealsLinearlyToItsFinalValue) {
  // With lr 0 the weights never move, so the loss of step s depends only on that step's Gumbel noise
  // (drawn from the seed and the step) and temperature. An annealed run (2 -> 0.5 over 4 steps) must
  // then match, step for step, runs held at that step's temperature 2 - 1.5 * min(1, s / 4) (values
  // exact in binary), including past total_steps where it stays at the final value.
  moe::context ctx = cpu();
  auto ids = random_ids(2, 8, 320, 13);
  auto options = [](float from, float to) {
    moe_trainer_options o = moe::trainer::default_options();
    o.lr = 0.f;
    o.seed = 5;
    o.total_steps = 4;
    o.gating = MOE_GATING_GUMBEL;
    o.gumbel_temperature = from;
    o.gumbel_temperature_final = to;
    return o;
  };
  std::vector<double> annealed;
  {
    moe::model m = load_f32(ctx, kMixtral);
    moe::trainer t(m, options(2.f, 0.5f));
    for (int s = 0; s < 6; ++s) annealed.push_back(t.step(ids, 2, 8).loss);
  }
  for (int s = 0; s < 6; ++s) {
    const float held = 2.f - 1.5f * std::min(1.f, static_cast<float>(s) / 4.f);
    moe::model m = load_f32(ctx, kMixtral);
    moe::trainer t(m, options(held, held));
    double loss = 0;
    for (int i = 0; i <= s; ++i) loss = t.step(ids, 2, 8).loss;
    EXPECT_EQ(loss, annealed[s]) << "step " << s << ": the temperature is not " << held;
    if (s >= 2) {
      EXPECT_NE(held, 2.f);
    }
  }
  // The temperature matters: a run held at 2 differs once the annealed one has moved away from 2.
  moe::model m = load_f32(ctx, kMixtral);
  moe::trainer t(m, options(2.f, 2.f));
  double held_at_2 = 0;
  for (int i = 0; i <= 4; ++i) held_at_2 = t.step(ids, 2, 8).loss;
  EXPECT_NE(held_at_2, annealed[4]);
}

TEST(Trainer, ExpertLoadAndDroppedShareThroughTheCApi) {
  moe::context ctx = cpu();
  moe::model m = load_f32(ctx, kDeepseek);
  moe_trainer_options o = moe::trainer::default_options();
  o.capacity_factor = 0.5f;
  moe::trainer t(m, o);
  // Before any step: the layers and zeros.
  moe::trainer::expert_load_table empty = t.expert_load();
  EXPECT_EQ(empty.layers, (std::vector<int32_t>{1, 2}));  // first_k_dense_replace = 1 of 3 layers
  EXPECT_EQ(empty.num_experts, 8);
  for (int64_t c : empty.counts) EXPECT_EQ(c, 0);
  auto ids = random_ids(8, 12, 320, 6);
  moe_train_stats s = t.step(ids, 4, 12);
  EXPECT_GT(s.dropped_fraction, 0);
  EXPECT_LE(s.dropped_fraction, 1);
  t.train(ids, 8, 12, 4, 3, true);
  moe::trainer::expert_load_table load = t.expert_load();
  ASSERT_EQ(load.counts.size(), 2u * 8u);
  for (size_t l = 0; l < 2; ++l) {
    int64_t sum = 0;
    for (int64_t e = 0; e < 8; ++e) sum += load.counts[l * 8 + e];
    EXPECT_EQ(sum, 3 * 4 * 12 * 2) << "layer " << load.layers[l] << ": 3 steps of 48 tokens, 2 experts each";
  }
  // Evaluation routes but does not count.
  t.evaluate(ids, 4, 12);
  EXPECT_EQ(t.expert_load().counts, load.counts);
  int64_t small[4], layers = 0, experts = 0;
  EXPECT_EQ(moe_trainer_expert_load(t.get(), small, 4, nullptr, &layers, &experts), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moe_last_error_message()).find("16"), std::string::npos) << moe_last_error_message();
  // A caller built against the older, shorter stats struct gets the fields it knows of only.
  moe_train_stats old{};
  old.struct_size = offsetof(moe_train_stats, dropped_fraction);
  old.dropped_fraction = -7;
  ASSERT_EQ(moe_trainer_evaluate(t.get(), ids.data(), nullptr, 4, 12, &old), MOE_OK);
  EXPECT_EQ(old.dropped_fraction, -7);
  EXPECT_GT(old.loss, 0);
}

}  // namespace
