#include "model/rope_tables.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace moe {

double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

std::vector<double> rope_inverse_frequencies(const RopeParameters& p, double* attention_factor) {
  const int dim = p.rot_dim;
  const int half = dim / 2;
  std::vector<double> inv(half);
  // transformers computes base ** (arange(0, dim, 2) / dim) in float32; the double version differs by
  // rounding only.
  for (int i = 0; i < half; ++i) inv[i] = 1.0 / std::pow(p.theta, (2.0 * i) / dim);
  *attention_factor = 1.0;
  if (p.type == "default") return inv;
  if (p.type == "linear") {
    for (auto& f : inv) f /= p.factor;
    return inv;
  }
  if (p.type == "yarn") {
    const double factor = p.factor;
    if (p.attention_factor > 0)
      *attention_factor = p.attention_factor;
    else if (p.mscale != 0 && p.mscale_all_dim != 0)
      *attention_factor = yarn_mscale(factor, p.mscale) / yarn_mscale(factor, p.mscale_all_dim);
    else
      *attention_factor = yarn_mscale(factor, 1.0);
    auto correction_dim = [&](double rotations) {
      return (dim * std::log(p.original_max_position_embeddings / (rotations * 2 * M_PI))) / (2 * std::log(p.theta));
    };
    double low = correction_dim(p.beta_fast), high = correction_dim(p.beta_slow);
    if (p.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;  // as transformers: avoid a zero-width ramp
    for (int i = 0; i < half; ++i) {
      double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      double extrapolation_factor = 1.0 - ramp;
      double extrapolated = inv[i], interpolated = inv[i] / factor;
      inv[i] = interpolated * (1 - extrapolation_factor) + extrapolated * extrapolation_factor;
    }
    return inv;
  }
  fail(MOE_ERR_UNSUPPORTED, "rope type '" + p.type + "' is not supported (supported: default, linear, yarn)");
}

RopeTables make_rope_tables(const RopeParameters& p, int positions) {
  double scale = 1;
  auto inv = rope_inverse_frequencies(p, &scale);
  RopeTables t;
  t.positions = positions;
  t.half = static_cast<int>(inv.size());
  t.cos.resize(static_cast<size_t>(positions) * t.half);
  t.sin.resize(t.cos.size());
  for (int pos = 0; pos < positions; ++pos) {
    for (int i = 0; i < t.half; ++i) {
      // transformers forms the angle in float32 (inv_freq.float() @ position.float()); do the same so
      // that large positions give the same angles.
      float angle = static_cast<float>(inv[i]) * static_cast<float>(pos);
      t.cos[static_cast<size_t>(pos) * t.half + i] = static_cast<float>(std::cos(static_cast<double>(angle)) * scale);
      t.sin[static_cast<size_t>(pos) * t.half + i] = static_cast<float>(std::sin(static_cast<double>(angle)) * scale);
    }
  }
  return t;
}

}  // namespace moe
