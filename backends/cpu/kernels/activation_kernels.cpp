// Activations. Gated: y[j] = act(gate[j]) * up[j] with gate = x[0, width), up = x[width, 2 width).
// Both activations are gate * sigmoid(t): t = gate for SiLU, and t = 2 sqrt(2/pi) (gate + 0.044715
// gate^3) for GELU-tanh, since 0.5 (1 + tanh(z)) = sigmoid(2 z). exp saturates instead of overflowing,
// so large |gate| gives gate or 0, never NaN.
#include "kernels/isa_kernels.h"
#include "kernels/simd.h"
#include "moe/moe_plugin.h"

namespace moe_cpu::MOE_CPU_ISA {
namespace {

template <int32_t kActivation>
inline Vec gated(Vec gate, Vec up) {
  Vec t = gate;
  if constexpr (kActivation == MOE_ACT_GELU_TANH) {
    const Vec cubic = mul(mul(gate, gate), broadcast(0.044715f));
    t = mul(fmadd(cubic, gate, gate), broadcast(2.f * 0.7978845608028654f));
  }
  const Vec sigmoid_denominator = add(broadcast(1.f), exp(sub(zero(), t)));
  return mul(div(gate, sigmoid_denominator), up);
}

template <int32_t kActivation, typename Store, typename StorePartial>
void gated_row(const float* x, int64_t width, Store store_out, StorePartial store_out_partial) {
  int64_t j = 0;
  for (; j + kLanes <= width; j += kLanes) store_out(j, gated<kActivation>(load(x + j), load(x + width + j)));
  if (j < width) {
    const int rest = static_cast<int>(width - j);
    store_out_partial(j, gated<kActivation>(load_partial(x + j, rest), load_partial(x + width + j, rest)), rest);
  }
}

template <int32_t kActivation>
void gated_row_f32(const float* x, float* y, int64_t width) {
  gated_row<kActivation>(
      x, width, [y](int64_t j, Vec v) { store(y + j, v); },
      [y](int64_t j, Vec v, int n) { store_partial(y + j, v, n); });
}

template <int32_t kActivation>
void gated_row_bf16(const float* x, uint16_t* y, int64_t width) {
  gated_row<kActivation>(
      x, width, [y](int64_t j, Vec v) { store_bf16(y + j, v); },
      [y](int64_t j, Vec v, int n) { store_bf16_partial(y + j, v, n); });
}

// dx = [dy * up * act'(gate) | dy * act(gate)] for one lane group. With s = sigmoid(t) and
// act = gate * s: act' = s + gate * s * (1 - s) * dt/dgate, dt/dgate = 1 (SiLU) or
// 2 sqrt(2/pi) (1 + 3 * 0.044715 gate^2) (GELU-tanh).
template <int32_t kActivation>
inline void gated_backward(Vec gate, Vec up, Vec dy, Vec& dgate, Vec& dup) {
  constexpr float kTwoC = 2.f * 0.7978845608028654f, kA = 0.044715f;
  Vec t = gate, dt = broadcast(1.f);
  if constexpr (kActivation == MOE_ACT_GELU_TANH) {
    const Vec g2 = mul(gate, gate);
    t = mul(fmadd(mul(g2, broadcast(kA)), gate, gate), broadcast(kTwoC));
    dt = mul(fmadd(g2, broadcast(3.f * kA), broadcast(1.f)), broadcast(kTwoC));
  }
  const Vec s = div(broadcast(1.f), add(broadcast(1.f), exp(sub(zero(), t))));
  const Vec act = mul(gate, s);
  const Vec derivative = fmadd(mul(act, sub(broadcast(1.f), s)), dt, s);
  dgate = mul(mul(dy, up), derivative);
  dup = mul(dy, act);
}

template <int32_t kActivation>
void gated_backward_row(const float* x, const float* dy, int64_t width, float* dx) {
  Vec dg, du;
  int64_t j = 0;
  for (; j + kLanes <= width; j += kLanes) {
    gated_backward<kActivation>(load(x + j), load(x + width + j), load(dy + j), dg, du);
    store(dx + j, dg);
    store(dx + width + j, du);
  }
  if (j < width) {
    const int rest = static_cast<int>(width - j);
    gated_backward<kActivation>(load_partial(x + j, rest), load_partial(x + width + j, rest),
                                load_partial(dy + j, rest), dg, du);
    store_partial(dx + j, dg, rest);
    store_partial(dx + width + j, du, rest);
  }
}

}  // namespace

void gated_act_backward_row(const float* x, const float* dy, int64_t width, int32_t activation, float* dx) {
  if (activation == MOE_ACT_GELU_TANH)
    gated_backward_row<MOE_ACT_GELU_TANH>(x, dy, width, dx);
  else
    gated_backward_row<MOE_ACT_SILU>(x, dy, width, dx);
}

void gated_act_row(const float* x, float* y, int64_t width, int32_t activation) {
  if (activation == MOE_ACT_GELU_TANH)
    gated_row_f32<MOE_ACT_GELU_TANH>(x, y, width);
  else
    gated_row_f32<MOE_ACT_SILU>(x, y, width);
}

void gated_act_row_bf16(const float* x, uint16_t* y, int64_t width, int32_t activation) {
  if (activation == MOE_ACT_GELU_TANH)
    gated_row_bf16<MOE_ACT_GELU_TANH>(x, y, width);
  else
    gated_row_bf16<MOE_ACT_SILU>(x, y, width);
}

void sigmoid(const float* x, float* y, int64_t count) {
  const Vec one = broadcast(1.f);
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) store(y + i, div(one, add(one, exp(sub(zero(), load(x + i))))));
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    store_partial(y + i, div(one, add(one, exp(sub(zero(), load_partial(x + i, rest))))), rest);
  }
}

float exp_shifted_sum(const float* x, float shift, float* y, int64_t count) {
  const Vec s = broadcast(shift);
  Vec sum = zero();
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    Vec e = exp(sub(load(x + i), s));
    store(y + i, e);
    sum = add(sum, e);
  }
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    Vec e = keep_first(exp(sub(load_partial(x + i, rest), s)), rest, 0.f);
    store_partial(y + i, e, rest);
    sum = add(sum, e);
  }
  return reduce_add(sum);
}

}  // namespace moe_cpu::MOE_CPU_ISA
