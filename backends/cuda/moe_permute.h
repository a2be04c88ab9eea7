// moe_permute's argument checks, shared by the op (moe_permute.cu) and by route_and_permute, which must
// refuse what it refuses with the same messages.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

// x f32 [tokens, dim]; ids i32 [tokens, top_k]; num_experts >= 1; x_sorted f32 [tokens * top_k, dim];
// offsets i64 [num_experts + 1]; source i32 [tokens * top_k]. Throws naming the tensor otherwise.
void check_permute(const moe_tensor* x, const moe_tensor* ids, int32_t num_experts, const moe_tensor* x_sorted,
                   const moe_tensor* offsets, const moe_tensor* source);

}  // namespace moe_cuda
