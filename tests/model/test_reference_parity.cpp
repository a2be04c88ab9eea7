// Parity with transformers 5.17 on the fixtures of tests/reference (made by make_fixtures.py): fp32
// logits of a ragged batch within 1e-4 relative (max |diff| / max |ref|) of transformers' float64
// logits, and greedy generation of 32 tokens identical to transformers' generate().
#include <gtest/gtest.h>

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

TEST_P(ReferenceParity, Bf16WeightsStayClose) {
  // bf16 weights (activations in f32): not the fp32 reference, but within bf16 rounding of it.
  ReferenceFixture fx = load_fixture(GetParam());
  moe::context ctx = test_context();
  moe::model::load_options o;
  o.dtype = MOE_LOAD_DTYPE_BF16;
  moe::model m(ctx, fx.directory, o);
  EXPECT_EQ(m.describe().dtype, MOE_DTYPE_BF16);
  EXPECT_LE(relative_error(m.forward(fx.sequences()), fx.logits), 5e-2);
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
