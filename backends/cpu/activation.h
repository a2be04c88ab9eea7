#pragma once

#include <cstdint>

namespace moe_cpu {

// Throws unless activation is MOE_ACT_SILU or MOE_ACT_GELU_TANH.
void check_activation(int32_t activation);

}  // namespace moe_cpu
