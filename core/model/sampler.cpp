#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace moe {

int32_t argmax(const float* values, int64_t n) {
  int64_t i = 0;
  while (i < n && std::isnan(values[i])) ++i;
  if (i == n) return 0;
  // The best value stays in a register; `values[i] > best_value` is false for NaN, so after the first
  // value that is not NaN no other test is needed.
  int64_t best = i;
  float best_value = values[i];
  for (++i; i < n; ++i) {
    if (values[i] > best_value) {
      best_value = values[i];
      best = i;
    }
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::next(const float* logits, int64_t vocab) {
  if (params_.temperature <= 0.f) return argmax(logits, vocab);
  // Order of the filters follows transformers' logits processors: temperature, then top-k, then top-p.
  candidates_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) candidates_[i] = {logits[i] / params_.temperature, static_cast<int32_t>(i)};
  auto by_value = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_value);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_value);
  }
  candidates_.resize(keep);
  const float max_logit = candidates_.front().first;
  double total = 0;
  std::vector<double> probs(keep);
  for (size_t i = 0; i < keep; ++i) total += probs[i] = std::exp(static_cast<double>(candidates_[i].first - max_logit));
  if (params_.top_p < 1.f) {
    // Smallest prefix whose probability reaches top_p (always at least one token).
    double cumulative = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    probs.resize(cut);
    candidates_.resize(cut);
    total = 0;
    for (double p : probs) total += p;
  }
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < probs.size(); ++i) {
    r -= probs[i];
    if (r <= 0) return candidates_[i].second;
  }
  return candidates_.back().second;
}

}  // namespace moe
