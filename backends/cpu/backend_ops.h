// The functions of the CPU backend's op table (api/include/moe/moe_plugin.h documents each one).
// Each is defined next to its kernels and runs its body through guarded() (errors.h).
#pragma once

#include "moe/moe_plugin.h"

namespace moe_cpu {

moe_status cpu_create(const moe_backend_options* options, moe_backend** out);
void cpu_destroy(moe_backend* be);
const char* cpu_device_description(moe_backend* be);
moe_status cpu_alloc(moe_backend* be, size_t bytes, void** out);
void cpu_free(moe_backend* be, void* ptr);
moe_status cpu_copy_from_host(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cpu_copy_to_host(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cpu_copy(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cpu_memset_zero(moe_backend* be, void* dst, size_t bytes);
moe_status cpu_synchronize(moe_backend* be);
moe_status cpu_record_begin(moe_backend* be);
moe_status cpu_record_end(moe_backend* be, moe_recorded_step** out);
moe_status cpu_replay_step(moe_backend* be, moe_recorded_step* step);
void cpu_destroy_step(moe_backend* be, moe_recorded_step* step);

moe_status cpu_gemm(moe_backend* be, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                    float beta, void* c, moe_dtype c_type, int64_t ldc);
moe_status cpu_rmsnorm(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, float eps, moe_tensor* y);
moe_status cpu_rope(moe_backend* be, moe_tensor* x, const moe_tensor* positions, const moe_tensor* cos_table,
                    const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim, int32_t layout);
moe_status cpu_gated_act(moe_backend* be, const moe_tensor* x, int32_t activation, moe_tensor* y);
moe_status cpu_add(moe_backend* be, const moe_tensor* a, const moe_tensor* b, moe_tensor* y);
moe_status cpu_embedding(moe_backend* be, const moe_tensor* ids, const moe_tensor* table, moe_tensor* out);
moe_status cpu_copy_2d(moe_backend* be, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                       int64_t rows, int64_t cols);

moe_status cpu_route_softmax_topk(moe_backend* be, const moe_tensor* logits, int32_t top_k, int32_t normalize,
                                  moe_tensor* ids, moe_tensor* weights);
moe_status cpu_route_sigmoid_group_topk(moe_backend* be, const moe_tensor* logits, const moe_tensor* bias,
                                        int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                        float scaling, moe_tensor* ids, moe_tensor* weights);
moe_status cpu_moe_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* ids, int32_t num_experts,
                           moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source);
moe_status cpu_expert_mlp(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets, const moe_tensor* gate_up,
                          const moe_tensor* down, int32_t activation, moe_tensor* y);
moe_status cpu_moe_unpermute(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                             const moe_tensor* weights, int32_t accumulate, moe_tensor* out);

moe_status cpu_kv_store(moe_backend* be, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                        const moe_tensor* position, moe_tensor* k_cache, moe_tensor* v_cache);
moe_status cpu_attention(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                         const moe_tensor* slot, const moe_tensor* kv_len, float scale, moe_tensor* out);

// ---- training ----
moe_status cpu_rmsnorm_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, const moe_tensor* dy,
                                float eps, moe_tensor* dx, moe_tensor* dweight);
moe_status cpu_gated_act_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* dy, int32_t activation,
                                  moe_tensor* dx);
moe_status cpu_embedding_backward(moe_backend* be, const moe_tensor* ids, const moe_tensor* dout, moe_tensor* dtable);
moe_status cpu_kv_load(moe_backend* be, const moe_tensor* k_cache, const moe_tensor* v_cache, const moe_tensor* slot,
                       const moe_tensor* position, moe_tensor* k, moe_tensor* v);
moe_status cpu_attention_backward(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                  const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                  float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                  moe_tensor* dk_cache, moe_tensor* dv_cache);
moe_status cpu_route_softmax_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, const moe_tensor* dweights, moe_tensor* dlogits);
moe_status cpu_route_sigmoid_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, float scaling, const moe_tensor* dweights,
                                           moe_tensor* dlogits);
moe_status cpu_moe_unpermute_backward(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                                      const moe_tensor* weights, const moe_tensor* dout, moe_tensor* dy_sorted,
                                      moe_tensor* dweights);
moe_status cpu_expert_mlp_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets,
                                   const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                   const moe_tensor* dy, moe_tensor* dx, moe_tensor* dgate_up, moe_tensor* ddown);
moe_status cpu_cross_entropy(moe_backend* be, const moe_tensor* logits, const moe_tensor* labels, int32_t ignore_index,
                             float label_smoothing, float grad_scale, moe_tensor* loss, moe_tensor* dlogits);
moe_status cpu_adamw_update(moe_backend* be, moe_tensor* param, const moe_tensor* grad, moe_tensor* m, moe_tensor* v,
                            float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step);
moe_status cpu_sum_squares(moe_backend* be, const moe_tensor* x, moe_tensor* out);
moe_status cpu_scale(moe_backend* be, moe_tensor* x, float alpha);
moe_status cpu_add_gumbel_noise(moe_backend* be, moe_tensor* logits, uint64_t seed, uint64_t offset, float scale);

// ---- greedy decoding (ABI 1.3) ----
moe_status cpu_argmax_rows(moe_backend* be, const moe_tensor* x, moe_tensor* out);
// ---- fused decode ops (ABI 1.4, arguments as of 1.5; ABI 1.5) ----
moe_status cpu_route_and_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                                 moe_tensor* h, const moe_tensor* router, int32_t sigmoid, const moe_tensor* bias,
                                 int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize, float scaling,
                                 moe_tensor* logits, moe_tensor* ids, moe_tensor* weights, moe_tensor* x_sorted,
                                 moe_tensor* offsets, moe_tensor* source);
moe_status cpu_rmsnorm_linear(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                              const moe_tensor* w, moe_tensor* h, moe_tensor* y);
moe_status cpu_expert_mlp_unpermute(moe_backend* be, const moe_tensor* x_sorted, const moe_tensor* offsets,
                                    const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                    const moe_tensor* source, const moe_tensor* weights, int32_t accumulate,
                                    moe_tensor* y_sorted, moe_tensor* out);
moe_status cpu_rope_kv_store(moe_backend* be, moe_tensor* q, moe_tensor* k, const moe_tensor* v,
                             const moe_tensor* positions, const moe_tensor* cos_table, const moe_tensor* sin_table,
                             int32_t rot_offset, int32_t rot_dim, int32_t layout, const moe_tensor* slot,
                             moe_tensor* k_cache, moe_tensor* v_cache);

// The instance an op was called on; names it when it is null.
moe_backend& backend_of(moe_backend* be);

}  // namespace moe_cpu
