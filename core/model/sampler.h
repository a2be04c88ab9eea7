// Chooses the next token from a row of logits: greedy (temperature 0) or sampled with temperature,
// top-k and top-p, from a seeded generator so the same seed gives the same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace moe {

struct SamplingParams {
  float temperature = 0.f;  // 0: greedy
  int32_t top_k = 0;        // 0: all
  float top_p = 1.f;        // 1: all
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t next(const float* logits, int64_t vocab);
  // Temperature 0: next() is argmax(logits), so the token can be taken on the device (ops::argmax_rows)
  // without copying the logits.
  bool greedy() const { return params_.temperature <= 0.f; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

// The index of the largest value; the first one on ties (torch.argmax's choice). NaN is never chosen
// (0 when every value is NaN), as the backends' argmax_rows (plugin ABI 1.3) does, so greedy tokens are
// the same whichever side takes the argmax.
int32_t argmax(const float* values, int64_t n);

}  // namespace moe
