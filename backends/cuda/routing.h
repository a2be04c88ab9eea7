// The routers' argument checks, shared by their ops (routing.cu) and by route_and_permute, which must
// refuse what they refuse with the same messages.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

// logits f32 [tokens, experts]; ids i32 and weights f32 [tokens, top_k]; 1 <= top_k <= experts and the
// routers' kMaxTopK. Returns tokens; throws naming the tensor or value otherwise.
int64_t check_router(const moe_tensor* logits, int32_t top_k, const moe_tensor* ids, const moe_tensor* weights);
// The sigmoid router's groups and bias, for `experts` experts (moe_plugin.h's route_sigmoid_group_topk).
void check_sigmoid_router(int64_t experts, const moe_tensor* bias, int32_t n_group, int32_t topk_group, int32_t top_k);

}  // namespace moe_cuda
