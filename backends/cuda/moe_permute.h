// moe_permute's and moe_unpermute's argument checks, shared by the ops (moe_permute.cu) and by
// route_and_permute and expert_mlp_unpermute, which must refuse what they refuse with the same messages.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

// x f32 [tokens, dim]; ids i32 [tokens, top_k]; num_experts >= 1; x_sorted f32 [tokens * top_k, dim];
// offsets i64 [num_experts + 1]; source i32 [tokens * top_k]. Throws naming the tensor otherwise.
void check_permute(const moe_tensor* x, const moe_tensor* ids, int32_t num_experts, const moe_tensor* x_sorted,
                   const moe_tensor* offsets, const moe_tensor* source);
// y_sorted f32 [rows, dim], source i32 [rows], weights f32 [tokens, top_k] with rows = tokens * top_k, and a
// per-token tensor f32 [tokens, dim] (named per_token_name). Throws naming the tensor otherwise.
void check_unpermute(const moe_tensor* y_sorted, const moe_tensor* source, const moe_tensor* weights,
                     const moe_tensor* per_token, const char* per_token_name);

}  // namespace moe_cuda
