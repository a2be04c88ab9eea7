// moe_generate_batch on the reference fixtures (f32): each row of a ragged batch generates what
// moe_generate gives for its prompt alone (greedy, and sampled with seed + row), rows end on their own
// (stop id, callback) without changing the others, and bad arguments are clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "moe/moe.h"
#include "reference_fixture.h"

namespace moe_test {
namespace {

class GenerateBatch : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx_ = load_fixture(GetParam());
    ctx_.emplace(test_context());
    moe::model::load_options o;
    o.dtype = MOE_LOAD_DTYPE_F32;
    model_ = std::make_unique<moe::model>(*ctx_, fx_.directory, o);
    // Rows of different lengths: the fixture's ragged sequences (7, 16, 3 and 11 ids) and its
    // generation prompt, whose greedy continuation transformers recorded.
    prompts_ = fx_.sequences();
    prompts_.push_back(fx_.gen_prompt);
  }
  std::vector<std::vector<int32_t>> alone(const moe::generate_options& g) const {
    std::vector<std::vector<int32_t>> rows;
    for (const auto& p : prompts_) rows.push_back(model_->generate(p, g));
    return rows;
  }
  ReferenceFixture fx_;
  std::optional<moe::context> ctx_;  // optional: a default moe::context would start a real one
  std::unique_ptr<moe::model> model_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_P(GenerateBatch, GreedyRowsEqualEachPromptAlone) {
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(fx_.gen_tokens.size());
  auto batch = model_->generate_batch(prompts_, g);
  auto expected = alone(g);
  ASSERT_EQ(batch.size(), prompts_.size());
  for (size_t r = 0; r < batch.size(); ++r) EXPECT_EQ(batch[r], expected[r]) << "row " << r;
  EXPECT_EQ(batch.back(), fx_.gen_tokens);  // and the generation row is transformers' own
}

TEST_P(GenerateBatch, OneRowEqualsGenerate) {
  moe::generate_options g;
  g.max_new_tokens = 8;
  auto batch = model_->generate_batch({prompts_[1]}, g);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0], model_->generate(prompts_[1], g));
}

// Decode steps run from recordings where the backend records (RecordedDecode), one per number of rows
// stepping; MOE_RECORD_DECODE=0 runs them op by op. Both give the same tokens, sampled too, also when rows
// stop at different steps (so several recordings are made).
TEST_P(GenerateBatch, RecordedDecodeStepsEqualOpByOp) {
  moe::generate_options g;
  g.max_new_tokens = 12;
  g.temperature = 0.8f;
  g.seed = 5;
  std::vector<std::vector<int32_t>> rows;
  for (size_t r = 0; r < prompts_.size(); ++r) rows.push_back(prompts_[r]);
  ASSERT_EQ(setenv("MOE_RECORD_DECODE", "require", 1), 0);  // a failed recording is an error, not a fallback
  auto recorded = model_->generate_batch(rows, g);
  ASSERT_EQ(setenv("MOE_RECORD_DECODE", "0", 1), 0);
  auto op_by_op = model_->generate_batch(rows, g);
  unsetenv("MOE_RECORD_DECODE");
  EXPECT_EQ(recorded, op_by_op);
  // Rows stopping at different steps: stop on the third token of row 0's own continuation.
  g.stop_ids = {op_by_op[0].at(2)};
  ASSERT_EQ(setenv("MOE_RECORD_DECODE", "require", 1), 0);
  auto recorded_stops = model_->generate_batch(rows, g);
  ASSERT_EQ(setenv("MOE_RECORD_DECODE", "0", 1), 0);
  auto op_by_op_stops = model_->generate_batch(rows, g);
  unsetenv("MOE_RECORD_DECODE");
  EXPECT_EQ(recorded_stops, op_by_op_stops);
  EXPECT_LE(recorded_stops[0].size(), 3u);
}

// Greedy decode steps take their tokens from the backend's argmax_rows (plugin ABI 1.3) and copy no logits;
// MOE_DEVICE_ARGMAX=0 copies the logits and takes the argmax on the host (=require: the device path must be
// there, so the comparison cannot pass by running the host's twice). Both give the same tokens, from
// recorded steps and op by op, in a batch whose rows stop at different steps and in a single generate.
TEST_P(GenerateBatch, DeviceArgmaxEqualsHostArgmax) {
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(fx_.gen_tokens.size());
  for (const char* record : {"require", "0"}) {
    SCOPED_TRACE(std::string("MOE_RECORD_DECODE=") + record);
    ASSERT_EQ(setenv("MOE_RECORD_DECODE", record, 1), 0);
    g.stop_ids.clear();
    ASSERT_EQ(setenv("MOE_DEVICE_ARGMAX", "require", 1), 0);
    auto device = model_->generate_batch(prompts_, g);
    auto device_alone = model_->generate(prompts_.back(), g);
    ASSERT_EQ(setenv("MOE_DEVICE_ARGMAX", "0", 1), 0);
    auto host = model_->generate_batch(prompts_, g);
    auto host_alone = model_->generate(prompts_.back(), g);
    EXPECT_EQ(device, host);
    EXPECT_EQ(device_alone, host_alone);
    EXPECT_EQ(device_alone, fx_.gen_tokens);  // transformers' own greedy continuation
    // Rows stopping at different steps (fewer rows step each time, so steps of several sizes run).
    g.stop_ids = {host[0].at(2)};
    ASSERT_EQ(setenv("MOE_DEVICE_ARGMAX", "require", 1), 0);
    auto device_stops = model_->generate_batch(prompts_, g);
    ASSERT_EQ(setenv("MOE_DEVICE_ARGMAX", "0", 1), 0);
    auto host_stops = model_->generate_batch(prompts_, g);
    EXPECT_EQ(device_stops, host_stops);
    EXPECT_LE(device_stops[0].size(), 3u);
  }
  unsetenv("MOE_DEVICE_ARGMAX");
  unsetenv("MOE_RECORD_DECODE");
}

// MOE_DECODE_TIMING=1 writes one line per generate call with the recorded steps' host-side split; the
// tokens do not change.
TEST_P(GenerateBatch, DecodeTimingReportsRecordedSteps) {
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(fx_.gen_tokens.size());
  ASSERT_EQ(setenv("MOE_RECORD_DECODE", "require", 1), 0);
  const auto plain = model_->generate(prompts_.back(), g);
  ASSERT_EQ(setenv("MOE_DECODE_TIMING", "1", 1), 0);
  ::testing::internal::CaptureStderr();
  const auto timed = model_->generate(prompts_.back(), g);
  const std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("MOE_DECODE_TIMING");
  unsetenv("MOE_RECORD_DECODE");
  EXPECT_EQ(timed, plain);
  // The first token comes from the prefill; every later one from a recorded step.
  const std::string steps = "MOE_DECODE_TIMING: " + std::to_string(fx_.gen_tokens.size() - 1) + " recorded steps";
  EXPECT_NE(err.find(steps), std::string::npos) << err;
  EXPECT_NE(err.find("wait for outputs"), std::string::npos) << err;
  ::testing::internal::CaptureStderr();
  model_->generate(prompts_.back(), g);  // off again: nothing written
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("MOE_DECODE_TIMING"), std::string::npos);
}

TEST_P(GenerateBatch, SampledRowRDrawsWithSeedPlusR) {
  moe::generate_options g;
  g.max_new_tokens = 16;
  g.temperature = 1.5f;
  g.top_k = 50;
  g.top_p = 0.95f;
  g.seed = 11;
  auto batch = model_->generate_batch(prompts_, g);
  EXPECT_EQ(model_->generate_batch(prompts_, g), batch);  // reproducible
  for (size_t r = 0; r < prompts_.size(); ++r) {
    moe::generate_options own = g;
    own.seed = g.seed + r;
    EXPECT_EQ(batch[r], model_->generate(prompts_[r], own)) << "row " << r;
  }
  // Rows with the same prompt draw different tokens (their seeds differ).
  auto same = model_->generate_batch({fx_.gen_prompt, fx_.gen_prompt}, g);
  EXPECT_NE(same[0], same[1]);
}

TEST_P(GenerateBatch, StopIdEndsOnlyTheRowsThatProduceIt) {
  moe::generate_options g;
  g.max_new_tokens = 12;
  auto full = alone(g);
  // A token row 1 makes at its 4th step; rows that never make it run to max_new_tokens.
  const int32_t stop = full[1][3];
  g.stop_ids = {stop};
  auto batch = model_->generate_batch(prompts_, g);
  for (size_t r = 0; r < prompts_.size(); ++r) {
    auto at = std::find(full[r].begin(), full[r].end(), stop);
    std::vector<int32_t> expected(full[r].begin(), at == full[r].end() ? at : at + 1);
    EXPECT_EQ(batch[r], expected) << "row " << r;
  }
  EXPECT_LE(batch[1].size(), 4u);
  EXPECT_EQ(batch[1].back(), stop);
}

TEST_P(GenerateBatch, CallbackStopsOneRowOrAll) {
  moe::generate_options g;
  g.max_new_tokens = 10;
  auto full = alone(g);
  // Row 2 stops at its 3rd token; the callback sees every kept token, rows in order within a step.
  std::vector<std::pair<int64_t, int32_t>> seen;
  auto batch = model_->generate_batch(prompts_, g, [&](int64_t row, int32_t token, const std::string&) {
    seen.emplace_back(row, token);
    const auto made = std::count_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == row; });
    return row == 2 && made == 3 ? MOE_GENERATE_STOP_ROW : MOE_GENERATE_CONTINUE;
  });
  size_t total = 0;
  for (size_t r = 0; r < prompts_.size(); ++r) {
    std::vector<int32_t> expected = full[r];
    if (r == 2) expected.resize(3);
    EXPECT_EQ(batch[r], expected) << "row " << r;
    total += batch[r].size();
  }
  ASSERT_EQ(seen.size(), total);
  // Step by step: the first prompts_.size() reports are every row's first token, in row order.
  for (size_t r = 0; r < prompts_.size(); ++r) EXPECT_EQ(seen[r], std::make_pair(int64_t(r), full[r][0]));
  for (size_t i = 3 * prompts_.size(); i < seen.size(); ++i) {
    EXPECT_NE(seen[i].first, 2) << "row 2 went on after it was stopped";
  }

  // STOP_ALL at row 1's 2nd token: rows 0 and 1 have 2 tokens, the rows after row 1 only their first.
  seen.clear();
  batch = model_->generate_batch(prompts_, g, [&](int64_t row, int32_t token, const std::string&) {
    seen.emplace_back(row, token);
    return row == 1 && seen.size() > prompts_.size() ? MOE_GENERATE_STOP_ALL : MOE_GENERATE_CONTINUE;
  });
  for (size_t r = 0; r < prompts_.size(); ++r) {
    const size_t made = r <= 1 ? 2 : 1;
    EXPECT_EQ(batch[r], std::vector<int32_t>(full[r].begin(), full[r].begin() + made)) << "row " << r;
  }
  EXPECT_EQ(seen.size(), prompts_.size() + 2);
}

TEST_P(GenerateBatch, MaxNewTokensZeroGivesEmptyRows) {
  moe::generate_options g;
  g.max_new_tokens = 0;
  auto batch = model_->generate_batch(prompts_, g);
  ASSERT_EQ(batch.size(), prompts_.size());
  for (const auto& row : batch) EXPECT_TRUE(row.empty());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GenerateBatch, ::testing::Values("mixtral", "deepseek_v3"),
                         [](const auto& info) { return info.param; });

// Argument errors through the C function: each is a status and a message naming what was wrong,
// and out_counts is left alone.
class GenerateBatchErrors : public GenerateBatch {
 protected:
  moe_status call(const std::vector<int32_t>& ids, const std::vector<int64_t>& lengths, int64_t rows,
                  int32_t max_new, int64_t row_capacity, moe_batch_token_callback callback = nullptr) {
    moe_generate_options g;
    moe_generate_options_init(&g);
    g.max_new_tokens = max_new;
    out_.assign(static_cast<size_t>(std::max<int64_t>(rows, 1) * std::max<int64_t>(row_capacity, 1)), 0);
    counts_.assign(static_cast<size_t>(std::max<int64_t>(rows, 1)), -7);
    return moe_generate_batch(model_->get(), ids.data(), lengths.data(), rows, &g, callback, nullptr, out_.data(),
                              row_capacity, counts_.data());
  }
  void expect_error(moe_status got, moe_status want, const std::string& words) {
    EXPECT_EQ(got, want) << moe_last_error_message();
    EXPECT_NE(std::string(moe_last_error_message()).find(words), std::string::npos) << moe_last_error_message();
    for (int64_t c : counts_) EXPECT_EQ(c, -7);
  }
  std::vector<int32_t> out_;
  std::vector<int64_t> counts_;
};

TEST_P(GenerateBatchErrors, BadArgumentsAreClearErrors) {
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5};
  expect_error(call(ids, {5}, 0, 4, 4), MOE_ERR_INVALID_ARGUMENT, "num_rows is 0");
  expect_error(call(ids, {5}, -3, 4, 4), MOE_ERR_INVALID_ARGUMENT, "num_rows is -3");
  expect_error(call(ids, {3, 0, 2}, 3, 4, 4), MOE_ERR_INVALID_ARGUMENT, "row 1's prompt is empty");
  expect_error(call({1, 2, 3, 999, 5}, {3, 2}, 2, 4, 4), MOE_ERR_INVALID_ARGUMENT,
               "row 1's prompt: token id 999 at index 0 is outside the vocabulary");
  expect_error(call({1, 2, -1, 4, 5}, {3, 2}, 2, 4, 4), MOE_ERR_INVALID_ARGUMENT, "row 0's prompt: token id -1");
  expect_error(call(ids, {3, 2}, 2, 4, 3), MOE_ERR_INVALID_ARGUMENT,
               "out_row_capacity (3) is smaller than max_new_tokens (4)");
  expect_error(call(ids, {3, 2}, 2, 254, 254), MOE_ERR_LIMIT,
               "row 0's prompt (3 tokens) + max_new_tokens (254) exceeds the maximum sequence length 256");
  expect_error(call(ids, {3, 2}, 2, -1, 4), MOE_ERR_INVALID_ARGUMENT, "max_new_tokens must be >= 0");

  // NULL pointers and a callback in the options instead of the argument.
  moe_generate_options g;
  moe_generate_options_init(&g);
  int64_t counts[2] = {-7, -7};
  int32_t out[8] = {};
  const int64_t lengths[2] = {3, 2};
  EXPECT_EQ(moe_generate_batch(nullptr, ids.data(), lengths, 2, &g, nullptr, nullptr, out, 4, counts),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(moe_generate_batch(model_->get(), nullptr, lengths, 2, &g, nullptr, nullptr, out, 4, counts),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(moe_generate_batch(model_->get(), ids.data(), nullptr, 2, &g, nullptr, nullptr, out, 4, counts),
            MOE_ERR_INVALID_ARGUMENT);
  g.max_new_tokens = 4;
  EXPECT_EQ(moe_generate_batch(model_->get(), ids.data(), lengths, 2, &g, nullptr, nullptr, nullptr, 4, counts),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(moe_generate_batch(model_->get(), ids.data(), lengths, 2, &g, nullptr, nullptr, out, 4, nullptr),
            MOE_ERR_INVALID_ARGUMENT);
  g.callback = [](int32_t, const char*, void*) -> int32_t { return 0; };
  EXPECT_EQ(moe_generate_batch(model_->get(), ids.data(), lengths, 2, &g, nullptr, nullptr, out, 4, counts),
            MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(moe_last_error_message()).find("options->callback"), std::string::npos);
  EXPECT_EQ(counts[0], -7);

  // After all that, a good call works on the same model.
  g.callback = nullptr;
  ASSERT_EQ(moe_generate_batch(model_->get(), ids.data(), lengths, 2, &g, nullptr, nullptr, out, 4, counts), MOE_OK)
      << moe_last_error_message();
  EXPECT_EQ(counts[0], 4);
  EXPECT_EQ(counts[1], 4);
}

TEST_P(GenerateBatchErrors, BatchLimitsAreLimitErrors) {
  // A model whose max_batch_tokens admits the prompts but not the KV cache of every row.
  moe::model::load_options o;
  o.dtype = MOE_LOAD_DTYPE_F32;
  o.max_batch_tokens = 64;
  moe::model small(*ctx_, fx_.directory, o);
  moe::generate_options g;
  g.max_new_tokens = 8;
  try {
    small.generate_batch(prompts_, g);  // 5 rows x (16 + 8) positions > 64
    FAIL() << "expected a limit error";
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_LIMIT);
    EXPECT_NE(std::string(e.what()).find("the KV cache would hold 5 rows x 24 positions"), std::string::npos) << e.what();
  }
  std::vector<std::vector<int32_t>> many(30, fx_.gen_prompt);  // 30 x 6 prompt ids > 64
  try {
    small.generate_batch(many, g);
    FAIL() << "expected a limit error";
  } catch (const moe::error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_LIMIT);
    EXPECT_NE(std::string(e.what()).find("the prompts hold more than 64 tokens"), std::string::npos) << e.what();
  }
  // Two short rows fit.
  EXPECT_EQ(small.generate_batch({fx_.gen_prompt, fx_.gen_prompt}, g).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GenerateBatchErrors, ::testing::Values("mixtral"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moe_test
