// The attention forward on bf16 tensor cores (attention_forward_mma.cu), taken instead of the exact f32
// kernel where the instance computes f32 products on bf16 tensor cores (MOE_CUDA_F32_MATH=bf16) and both
// head dims are at most kAttentionMmaMaxHeadDim.
#pragma once

#include <cstdint>

#include "attention_plan.h"
#include "backend_instance.h"
#include "kv_cache.h"

namespace moe_cuda {

constexpr int64_t kAttentionMmaMaxHeadDim = 128;

bool attention_forward_mma_fits(const moe_backend& b, int64_t dk, int64_t dv);

// out [tokens, heads, dv] for q [tokens, heads, dk] against the caches (checked, and slot and kv_len read,
// by plan_attention).
void attention_forward_mma(moe_backend& b, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                           const moe_tensor* slot, const moe_tensor* kv_len, const KvCacheShape& c, float scale,
                           float* out);

}  // namespace moe_cuda
