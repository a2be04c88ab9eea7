#pragma once

#include <cstdint>

namespace moe_cpu {

// Throws unless activation is MOE_ACT_SILU or MOE_ACT_GELU_TANH.
void check_activation(int32_t activation);

// dx [2 * width] (gate gradients, then up gradients) of one row y = act(gate) * up, for the forward
// input x [2 * width] and upstream dy [width].
void gated_act_backward_row(const float* x, const float* dy, int64_t width, int32_t activation, float* dx);

}  // namespace moe_cpu
