// RMSNorm of one row: sum of squares in four independent vector accumulators (so the adds are not
// one long dependency chain), then y = x * rsqrt(mean + eps) * weight. A row whose squares overflow f32
// is summed again in double.
#include "kernels/isa_kernels.h"
#include "kernels/simd.h"

namespace moe_cpu::MOE_CPU_ISA {
namespace {

inline Vec load_weight(const float* w, int64_t j) { return load(w + j); }
inline Vec load_weight(const uint16_t* w, int64_t j) { return load_bf16(w + j); }
inline Vec load_weight_partial(const float* w, int64_t j, int n) { return load_partial(w + j, n); }
inline Vec load_weight_partial(const uint16_t* w, int64_t j, int n) { return load_bf16_partial(w + j, n); }

template <typename W>
void normalize_row(const float* x, const W* weight, float eps, int64_t width, float* y) {
  Vec acc[4] = {zero(), zero(), zero(), zero()};
  int64_t j = 0;
  for (; j + 4 * kLanes <= width; j += 4 * kLanes)
    for (int u = 0; u < 4; ++u) {
      Vec v = load(x + j + u * kLanes);
      acc[u] = fmadd(v, v, acc[u]);
    }
  for (; j + kLanes <= width; j += kLanes) {
    Vec v = load(x + j);
    acc[0] = fmadd(v, v, acc[0]);
  }
  if (j < width) {
    Vec v = load_partial(x + j, static_cast<int>(width - j));
    acc[1] = fmadd(v, v, acc[1]);
  }
  const float squares = reduce_add(add(add(acc[0], acc[1]), add(acc[2], acc[3])));
  float inv_rms = 1.f / __builtin_sqrtf(squares / static_cast<float>(width) + eps);
  if (!(squares <= 3.4e38f)) {
    // The squares overflowed f32 (|x| beyond ~1e19: weights blown up in training): sum again in double,
    // so the row still normalises to finite values and the divergence shows in the loss, not as zeros.
    double wide = 0;
    for (int64_t k = 0; k < width; ++k) wide += static_cast<double>(x[k]) * x[k];
    inv_rms = static_cast<float>(1.0 / __builtin_sqrt(wide / static_cast<double>(width) + eps));
  }
  const Vec inv = broadcast(inv_rms);
  for (j = 0; j + kLanes <= width; j += kLanes) store(y + j, mul(mul(load(x + j), inv), load_weight(weight, j)));
  if (j < width) {
    const int rest = static_cast<int>(width - j);
    store_partial(y + j, mul(mul(load_partial(x + j, rest), inv), load_weight_partial(weight, j, rest)), rest);
  }
}

}  // namespace

void rmsnorm_row(const float* x, const void* weight, bool weight_is_bf16, float eps, int64_t width, float* y) {
  if (weight_is_bf16)
    normalize_row(x, static_cast<const uint16_t*>(weight), eps, width, y);
  else
    normalize_row(x, static_cast<const float*>(weight), eps, width, y);
}

}  // namespace moe_cpu::MOE_CPU_ISA
