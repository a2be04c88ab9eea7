// Parity with transformers 5.17 on the fixtures of tests/reference (made by make_fixtures.py): fp32
// logits of a ragged batch within 1e-4 relative (max |diff| / max |ref|) of transformers' float64
// logits, and greedy generation of 32 tokens identical to transformers' generate().
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "reference_fixture.h"

namespace moe_test {
namespace {

class ReferenceParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceParity, LogitsOfRaggedBatchMatchTransformers) {
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model::load_options o;
  o.dtype = MOE_LOAD_DTYPE_F32;
  moe::model m(ctx, fx.directory, o);
  std::vector<float> logits = m.forward(fx.sequences());
  ASSERT_EQ(logits.size(), fx.logits.size());
  double err = relative_error(logits, fx.logits);
  EXPECT_LE(err, 1e-4) << fx.name << ": max|diff|/max|ref| = " << err;
}

// DeepSeek-V3 inference attends over the latent (compressed) MLA cache by default; the per-head cache
// (MOE_MLA_CACHE=per_head, what training uses) must give transformers' logits too, and so must greedy
// generation, which decodes over the cache token by token.
TEST_P(ReferenceParity, BothMlaCacheLayoutsMatchTransformers) {
  ReferenceFixture fx = load_fixture(GetParam());
  if (GetParam().rfind("deepseek", 0) != 0) GTEST_SKIP() << fx.name << " has no MLA";
  moe::context ctx = test_context();
  moe::model::load_options o;
  o.dtype = MOE_LOAD_DTYPE_F32;
  moe::model m(ctx, fx.directory, o);
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(fx.gen_tokens.size());
  for (const char* layout : {"latent", "per_head"}) {
    ASSERT_EQ(setenv("MOE_MLA_CACHE", layout, 1), 0);
    std::vector<float> logits = m.forward(fx.sequences());
    std::vector<int32_t> generated = m.generate(fx.gen_prompt, g);
    unsetenv("MOE_MLA_CACHE");
    EXPECT_LE(relative_error(logits, fx.logits), 1e-4) << layout;
    EXPECT_EQ(generated, fx.gen_tokens) << layout;
  }
}

TEST_P(ReferenceParity, LastTokenLogitsAreTheLastRows) {
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model m(ctx, fx.directory);
  std::vector<float> last = m.forward(fx.sequences(), /*last_only=*/true);
  std::vector<float> expected;
  size_t end = 0;
  for (int64_t len : fx.seq_lengths) {
    end += static_cast<size_t>(len);
    expected.insert(expected.end(), fx.logits.begin() + (end - 1) * fx.vocab, fx.logits.begin() + end * fx.vocab);
  }
  EXPECT_LE(relative_error(last, expected), 1e-4);
}

TEST_P(ReferenceParity, GreedyGenerationMatchesTransformers) {
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model m(ctx, fx.directory);
  moe::generate_options g;
  g.max_new_tokens = static_cast<int32_t>(fx.gen_tokens.size());
  std::vector<int32_t> tokens = m.generate(fx.gen_prompt, g);
  EXPECT_EQ(tokens, fx.gen_tokens);
}

TEST_P(ReferenceParity, Bf16ComputeMatchesF32OnTheSameRoundedWeights) {
  // bf16 weights change the function, so the bf16 path is held to the f32 path on the same
  // bf16-rounded weights, token by token: only the bf16 products differ (about 1e-2 relative). The
  // fixtures' weights are drawn large on purpose (so routing varies between tokens); a token whose
  // router scores are nearly tied may then pick another expert under bf16 rounding, so at most two
  // of the batch's tokens may differ by more.
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model::load_options bf16;
  bf16.dtype = MOE_LOAD_DTYPE_BF16;
  moe::model m(ctx, fx.directory, bf16);
  EXPECT_EQ(m.describe().dtype, MOE_DTYPE_BF16);
  auto rounded = std::filesystem::temp_directory_path() / ("moe_bf16_" + fx.name + std::to_string(::getpid()));
  m.save(rounded.string());
  moe::model::load_options f32;
  f32.dtype = MOE_LOAD_DTYPE_F32;
  moe::model reference(ctx, rounded.string(), f32);
  std::vector<float> got = m.forward(fx.sequences()), want = reference.forward(fx.sequences());
  std::filesystem::remove_all(rounded);
  const size_t v = static_cast<size_t>(fx.vocab), tokens = got.size() / v;
  int outliers = 0;
  for (size_t t = 0; t < tokens; ++t) {
    std::vector<float> a(got.begin() + t * v, got.begin() + (t + 1) * v), b(want.begin() + t * v, want.begin() + (t + 1) * v);
    double err = relative_error(a, b);
    if (err > 3e-2) ++outliers;
    EXPECT_FALSE(std::isnan(err));
  }
  EXPECT_LE(outliers, 2) << fx.name << ": " << outliers << " of " << tokens << " tokens beyond 3e-2";
}

TEST_P(ReferenceParity, ParameterCountMatchesTransformers) {
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model m(ctx, fx.directory);
  EXPECT_EQ(m.describe().num_parameters, fx.parameter_count);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceParity, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moe_test
