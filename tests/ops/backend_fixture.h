// The op tests run once per backend: every backend plugin found in $MOE_PLUGIN_DIR (by default the
// build tree's plugin folder), plus the ones the project ships ("cpu", "cuda"), which report SKIPPED
// with the reason when their plugin is absent or cannot run here (score 0). The CPU backend runs a
// second time with MOE_CPU_ISA=avx2, so that its AVX2 kernels are tested on AVX-512 machines too.
//
// Ops are called through the core's wrappers (moe::ops), except where a test needs what the
// wrappers do not expose (row strides, invalid arguments the wrappers would reject first).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "tensor/backend.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

namespace moe::testing {

// The labels of the backends under test: "cpu", "cpu_avx2", "cuda" and any other plugin found.
std::vector<std::string> backend_labels();
std::string label_name(const ::testing::TestParamInfo<std::string>& info);

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  Backend& be() { return *backend_; }
  // A second instance of a plugin (a test's own descriptor), set up as be() was (MOE_CPU_ISA of the variant).
  std::unique_ptr<Backend> another_instance(const moe_plugin_descriptor* descriptor);

  Tensor upload_f32(const std::vector<float>& values, Shape shape);
  // values must already be bf16-exact (see round_to_bf16).
  Tensor upload_bf16(const std::vector<float>& values, Shape shape);
  // f32 or bf16 as `dtype` says.
  Tensor upload_float(const std::vector<float>& values, moe_dtype dtype, Shape shape);
  Tensor upload_i32(const std::vector<int32_t>& values, Shape shape);
  // A tensor whose every byte is 0xff: NaN as f32, -1 as an integer. Outputs start like this, so an
  // element the op forgets to write shows up.
  Tensor poisoned(moe_dtype dtype, Shape shape);
  // Makes the next allocations of these sizes (the outputs a wrapper allocates itself) come back
  // poisoned: empties the backend's block cache and refills it with poisoned blocks.
  void poison_next_allocations(const std::vector<size_t>& bytes);

  std::vector<float> download_f32(const Tensor& t) { return t.to_vector<float>(); }

  // A recorded step holding what `calls` enqueues while recording; `calls` returns the status of its op
  // calls, which must be MOE_OK (else this throws moe::Error naming `what`).
  template <typename Calls>
  moe_recorded_step* record(Calls&& calls, const char* what) {
    be().check(be().ops().record_begin(be().handle()), "record_begin");
    const moe_status recorded = calls();
    moe_recorded_step* step = nullptr;
    be().check(be().ops().record_end(be().handle(), &step), "record_end");
    be().check(recorded, what);
    return step;
  }
  // Replays the two steps in turn and waits for both.
  void replay_both(moe_recorded_step* a, moe_recorded_step* b) {
    be().check(be().ops().replay_step(be().handle(), a), "replay_step");
    be().check(be().ops().replay_step(be().handle(), b), "replay_step");
    be().check(be().ops().synchronize(be().handle()), "synchronize");
  }
  // Runs body(value) with MOE_CUDA_FUSED_DECODE = "0", then "1" (the CUDA backend's fused decode kernels off,
  // then on; other backends ignore it), unsetting it afterwards, also when a check throws.
  template <typename Body>
  void with_fused_decode_off_and_on(Body&& body) {
    struct Unset {
      ~Unset() { unsetenv("MOE_CUDA_FUSED_DECODE"); }
    } unset;
    for (const char* value : {"0", "1"}) {
      setenv("MOE_CUDA_FUSED_DECODE", value, 1);
      SCOPED_TRACE(::testing::Message() << "MOE_CUDA_FUSED_DECODE=" << value);
      body(value);
    }
  }

 private:
  Backend* backend_ = nullptr;
};

// Instantiates a BackendTest-derived suite for every backend under test.
#define MOE_INSTANTIATE_FOR_BACKENDS(suite) \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::ValuesIn(::moe::testing::backend_labels()), \
                           ::moe::testing::label_name)

// Seeded uniform values in [low, high), never all zero.
std::vector<float> random_floats(size_t count, uint32_t seed, float low = -1.f, float high = 1.f);
// The values rounded to bf16 (round to nearest even), still as floats.
std::vector<float> round_to_bf16(std::vector<float> values);
std::vector<float> rounded_if_bf16(std::vector<float> values, moe_dtype dtype);
std::vector<double> to_double(const std::vector<float>& values);

// max|got - want| / max|want| <= tolerance, and no NaN in got. The failure message names the worst
// element.
::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<double>& want, double tolerance);
// The same shape and the same bytes (the fused ops promise their parts' results bit for bit); the failure
// message names the tensor and the first byte that differs.
::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want, const char* name);
// same_bits for each of route_and_permute's outputs.
void expect_same_dispatch(const ops::Dispatch& got, const ops::Dispatch& want);

constexpr double kF32Tolerance = 1e-4;
constexpr double kBf16Tolerance = 1e-2;
inline double tolerance_for(moe_dtype dtype) { return dtype == MOE_DTYPE_BF16 ? kBf16Tolerance : kF32Tolerance; }

// Runs `call` and checks that it throws moe::Error with `status` and a message containing every
// one of `fragments`.
template <typename Call>
::testing::AssertionResult fails_with(Call&& call, moe_status status, const std::vector<std::string>& fragments) {
  try {
    call();
  } catch (const Error& e) {
    if (e.status() != status)
      return ::testing::AssertionFailure() << "status " << e.status() << " instead of " << status << ": " << e.what();
    for (const auto& f : fragments)
      if (std::string(e.what()).find(f) == std::string::npos)
        return ::testing::AssertionFailure() << "message '" << e.what() << "' does not mention '" << f << "'";
    return ::testing::AssertionSuccess() << e.what();
  }
  return ::testing::AssertionFailure() << "the call succeeded";
}

}  // namespace moe::testing
