// The rmsnorm op's argument checks, shared by the op (rmsnorm.cu) and by route_and_permute's one-block path,
// which norms its rows as the op does and must refuse what it refuses with the same messages.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

// x f32 with a last dimension of the weight's length, weight f32 or bf16 [width], y f32 with x's elements,
// eps >= 0. Throws naming the argument otherwise; returns x's element count.
int64_t check_rmsnorm(const moe_tensor* x, const moe_tensor* weight, float eps, const moe_tensor* y);

}  // namespace moe_cuda
