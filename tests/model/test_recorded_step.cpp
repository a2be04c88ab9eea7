// Recorded steps (plugin ABI 1.2) through the core: a recording replays with new inputs copied into its
// input tensors, the blocks it allocated stay its own, a host copy while recording fails the recording
// cleanly, and a bad index met by a replay fails the next wait, naming the op, after which the instance
// works again. Runs on MOE_TEST_BACKEND (cpu unless set; scripts/gpu-check sets cuda).
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "context.h"
#include "../common/core_test_context.h"
#include "tensor/ops.h"
#include "tensor/recorded_step.h"

namespace moe {
namespace {

class RecordedSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = moe::testing::core_test_context();
    if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  }
  Backend& be() const { return ctx_->backend(); }
  Tensor f32(const std::vector<float>& v, Shape shape) const {
    return Tensor::from_host(be(), MOE_DTYPE_F32, std::move(shape), v.data());
  }
  std::shared_ptr<Context> ctx_;
};

// y = rmsnorm(x) + x, with the norm's output a temporary made while recording.
void norm_plus_input(const Tensor& x, const Tensor& w, Tensor& y, void** temporary = nullptr) {
  Tensor normed = ops::rmsnorm(x, w, 1e-6f);
  if (temporary) *temporary = normed.data();
  ops::add(normed, x, y);
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f * (1 + std::abs(want[i]))) << "at " << i;
}

TEST_F(RecordedSteps, ReplaysReadTheInputsOfTheirTime) {
  const std::vector<float> a = {1, -2, 3, 0.5f, 4, 5, -6, 7}, b = {0.25f, 8, -1, 2, -3, 9, 1, 1};
  Tensor w = f32({1.5f, 0.5f, -1, 2}, {4});
  Tensor x = f32(a, {2, 4}), y = Tensor::empty(be(), MOE_DTYPE_F32, {2, 4});
  std::string why;
  auto step = RecordedStep::record(be(), [&] { norm_plus_input(x, w, y); }, &why);
  ASSERT_TRUE(step) << why;

  for (const auto* input : {&a, &b, &a}) {
    x.copy_from_host(input->data(), input->size() * sizeof(float));
    step->replay();
    std::vector<float> got = y.to_vector<float>();
    Tensor want = Tensor::empty(be(), MOE_DTYPE_F32, {2, 4});
    norm_plus_input(f32(*input, {2, 4}), w, want);
    expect_close(got, want.to_vector<float>());
  }
}

TEST_F(RecordedSteps, BlocksAllocatedWhileRecordingStayTheSteps) {
  Tensor w = f32({1, 1, 1, 1}, {4});
  Tensor x = f32({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}), y = Tensor::empty(be(), MOE_DTYPE_F32, {2, 4});
  void* temporary = nullptr;
  std::string why;
  auto step = RecordedStep::record(be(), [&] { norm_plus_input(x, w, y, &temporary); }, &why);
  ASSERT_TRUE(step) << why;
  ASSERT_NE(temporary, nullptr);
  // The temporary was released while recording; the cache must not hand it out while the step lives.
  std::vector<Tensor> others;
  for (int i = 0; i < 8; ++i) {
    others.push_back(Tensor::empty(be(), MOE_DTYPE_F32, {2, 4}));
    EXPECT_NE(others.back().data(), temporary) << "allocation " << i << " got the recording's block";
  }
  step->replay();
  Tensor want = Tensor::empty(be(), MOE_DTYPE_F32, {2, 4});
  norm_plus_input(x, w, want);
  expect_close(y.to_vector<float>(), want.to_vector<float>());
}

TEST_F(RecordedSteps, HostCopyWhileRecordingFailsTheRecordingAndNothingElse) {
  Tensor x = f32({1, 2, 3, 4}, {4});
  std::string why;
  auto step = RecordedStep::record(be(), [&] { (void)x.to_vector<float>(); }, &why);
  EXPECT_FALSE(step);
  EXPECT_NE(why.find("copy_to_host"), std::string::npos) << why;
  // The instance records and runs as before.
  Tensor y = Tensor::empty(be(), MOE_DTYPE_F32, {4});
  step = RecordedStep::record(be(), [&] { ops::add(x, x, y); }, &why);
  ASSERT_TRUE(step) << why;
  step->replay();
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2, 4, 6, 8}));
}

TEST_F(RecordedSteps, BadIndexInAReplayFailsTheNextWaitNamingTheOp) {
  std::vector<float> table(10 * 4);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i);
  Tensor t = f32(table, {10, 4});
  const std::vector<int32_t> good = {1, 2}, bad = {1, 99}, again = {3, 4};
  Tensor ids = Tensor::from_host(be(), MOE_DTYPE_I32, {2}, good.data());
  Tensor out = Tensor::empty(be(), MOE_DTYPE_F32, {2, 4});
  std::string why;
  auto step = RecordedStep::record(
      be(),
      [&] {
        Tensor rows = ops::embedding(ids, t);
        ops::copy(rows, out);
      },
      &why);
  ASSERT_TRUE(step) << why;
  step->replay();
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11}));

  ids.copy_from_host(bad.data(), bad.size() * sizeof(int32_t));
  step->replay();
  try {
    (void)out.to_vector<float>();
    FAIL() << "the replay with id 99 (vocab 10) did not fail the next copy to the host";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.status(), MOE_ERR_INVALID_ARGUMENT) << m;
    EXPECT_NE(m.find("embedding"), std::string::npos) << m;
    EXPECT_NE(m.find("99"), std::string::npos) << m;
  }
  ids.copy_from_host(again.data(), again.size() * sizeof(int32_t));
  step->replay();
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{12, 13, 14, 15, 16, 17, 18, 19}));
}

}  // namespace
}  // namespace moe
