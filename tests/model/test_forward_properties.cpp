// Properties of forward and generate through the C++ API: ragged batches equal sequences run alone,
// argument errors name what was wrong, generation stops where asked and sampling is reproducible.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "moe/moe.h"
#include "reference_fixture.h"

namespace moe_test {
namespace {

class ForwardProperties : public ::testing::Test {
 protected:
  void SetUp() override {
    fx_ = load_fixture("deepseek_v3");
    ctx_.emplace(test_context());
    model_ = std::make_unique<moe::model>(*ctx_, fx_.directory);
  }
  std::string error_of(moe_status s) {
    EXPECT_NE(s, MOE_OK);
    return moe_last_error_message();
  }
  ReferenceFixture fx_;
  std::optional<moe::context> ctx_;  // optional: a default moe::context would start a real one
  std::unique_ptr<moe::model> model_;
};

TEST_F(ForwardProperties, RaggedBatchEqualsEachSequenceAlone) {
  auto seqs = fx_.sequences();
  std::vector<float> batched = model_->forward(seqs);
  size_t offset = 0;
  for (const auto& s : seqs) {
    std::vector<float> alone = model_->forward({s});
    std::vector<float> slice(batched.begin() + offset, batched.begin() + offset + alone.size());
    EXPECT_LE(relative_error(slice, alone), 1e-5);
    offset += alone.size();
  }
}

TEST_F(ForwardProperties, OrderOfSequencesDoesNotMatter) {
  auto seqs = fx_.sequences();
  std::vector<float> forward_order = model_->forward(seqs, true);
  std::reverse(seqs.begin(), seqs.end());
  std::vector<float> reversed = model_->forward(seqs, true);
  const size_t v = static_cast<size_t>(fx_.vocab), n = seqs.size();
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> a(forward_order.begin() + i * v, forward_order.begin() + (i + 1) * v);
    std::vector<float> b(reversed.begin() + (n - 1 - i) * v, reversed.begin() + (n - i) * v);
    EXPECT_LE(relative_error(a, b), 1e-5) << "sequence " << i;
  }
}

TEST_F(ForwardProperties, ArgumentErrorsNameTheProblem) {
  std::vector<int32_t> ids = {1, 2, 3};
  std::vector<int64_t> lengths = {3};
  std::vector<float> out(static_cast<size_t>(3 * fx_.vocab));
  moe_model* m = model_->get();
  std::string msg = error_of(moe_forward(m, ids.data(), lengths.data(), 0, nullptr, out.data(), 1 << 20));
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;

  ids[1] = static_cast<int32_t>(fx_.vocab) + 5;
  msg = error_of(moe_forward(m, ids.data(), lengths.data(), 1, nullptr, out.data(), static_cast<int64_t>(out.size())));
  EXPECT_NE(msg.find(std::to_string(fx_.vocab + 5)), std::string::npos) << msg;
  ids[1] = -1;
  msg = error_of(moe_forward(m, ids.data(), lengths.data(), 1, nullptr, out.data(), static_cast<int64_t>(out.size())));
  EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
  ids[1] = 2;

  msg = error_of(moe_forward(m, ids.data(), lengths.data(), 1, nullptr, out.data(), 10));
  EXPECT_NE(msg.find("logits_capacity"), std::string::npos) << msg;

  lengths[0] = 0;
  msg = error_of(moe_forward(m, ids.data(), lengths.data(), 1, nullptr, out.data(), static_cast<int64_t>(out.size())));
  EXPECT_NE(msg.find("length 0"), std::string::npos) << msg;

  std::vector<int32_t> long_ids(300, 1);  // the fixture's max_position_embeddings is 256
  lengths[0] = 300;
  std::vector<float> big(static_cast<size_t>(300 * fx_.vocab));
  EXPECT_EQ(moe_forward(m, long_ids.data(), lengths.data(), 1, nullptr, big.data(), static_cast<int64_t>(big.size())),
            MOE_ERR_LIMIT);
  EXPECT_EQ(moe_forward(nullptr, ids.data(), lengths.data(), 1, nullptr, out.data(), 1), MOE_ERR_INVALID_ARGUMENT);
}

TEST_F(ForwardProperties, CallbackStopsGeneration) {
  moe::generate_options g;
  g.max_new_tokens = 20;
  int seen = 0;
  g.on_token = [&](int32_t, const std::string&) { return ++seen < 5; };
  auto tokens = model_->generate(fx_.gen_prompt, g);
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(tokens.size(), 5u);
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), fx_.gen_tokens.begin()));
}

TEST_F(ForwardProperties, StopIdEndsGeneration) {
  moe::generate_options g;
  g.max_new_tokens = 32;
  g.stop_ids = {fx_.gen_tokens[3]};
  auto tokens = model_->generate(fx_.gen_prompt, g);
  auto first = std::find(fx_.gen_tokens.begin(), fx_.gen_tokens.end(), fx_.gen_tokens[3]);
  EXPECT_EQ(tokens.size(), static_cast<size_t>(first - fx_.gen_tokens.begin()) + 1);
  EXPECT_EQ(tokens.back(), fx_.gen_tokens[3]);
}

TEST_F(ForwardProperties, SamplingIsReproducibleAndSeedDependent) {
  moe::generate_options g;
  g.max_new_tokens = 24;
  g.temperature = 1.5f;
  g.top_k = 50;
  g.top_p = 0.95f;
  g.seed = 7;
  auto a = model_->generate(fx_.gen_prompt, g);
  auto b = model_->generate(fx_.gen_prompt, g);
  EXPECT_EQ(a, b);
  g.seed = 8;
  auto c = model_->generate(fx_.gen_prompt, g);
  EXPECT_NE(a, c);
  for (int32_t t : a) EXPECT_TRUE(t >= 0 && t < fx_.vocab);
}

TEST_F(ForwardProperties, TopKOneIsGreedy) {
  moe::generate_options g;
  g.max_new_tokens = 16;
  g.temperature = 0.7f;
  g.top_k = 1;
  g.seed = 3;
  auto tokens = model_->generate(fx_.gen_prompt, g);
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), fx_.gen_tokens.begin()));
}

TEST_F(ForwardProperties, GenerateRejectsBadOptions) {
  moe::generate_options g;
  g.temperature = -1;
  EXPECT_THROW(model_->generate(fx_.gen_prompt, g), moe::error);
  g.temperature = 0;
  g.max_new_tokens = 1000;  // 6 + 1000 > 256 positions
  try {
    model_->generate(fx_.gen_prompt, g);
    FAIL() << "expected a limit error";
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_LIMIT);
    EXPECT_NE(std::string(e.what()).find("maximum sequence length"), std::string::npos) << e.what();
  }
}

TEST_F(ForwardProperties, SaveThenLoadGivesTheSameLogits) {
  auto dir = std::filesystem::temp_directory_path() / ("moe_save_" + std::to_string(::getpid()));
  model_->save(dir.string());
  moe::model reloaded(*ctx_, dir.string());
  EXPECT_EQ(reloaded.forward(fx_.sequences()), model_->forward(fx_.sequences()));
  EXPECT_EQ(reloaded.describe().num_parameters, model_->describe().num_parameters);
  std::filesystem::remove_all(dir);
}

TEST_F(ForwardProperties, DescribeCountsParameters) {
  moe_model_info i = model_->describe();
  EXPECT_STREQ(i.architecture, "deepseek_v3");
  EXPECT_EQ(i.num_layers, 3);
  EXPECT_EQ(i.num_moe_layers, 2);
  EXPECT_EQ(i.num_experts, 8);
  EXPECT_EQ(i.experts_per_token, 2);
  EXPECT_EQ(i.num_shared_experts, 1);
  EXPECT_GT(i.num_parameters, i.active_parameters);
  // 2 MoE layers x 6 unused experts x 3 matrices [32 x 64].
  EXPECT_EQ(i.num_parameters - i.active_parameters, 2 * 6 * 3 * 32 * 64);
}

}  // namespace
}  // namespace moe_test
