// The functions of the CUDA backend's op table (api/include/moe/moe_plugin.h documents each one).
// Each is defined next to its kernels and runs its body through guarded() (backend_instance.h).
#pragma once

#include "moe/moe_plugin.h"

namespace moe_cuda {

moe_status cuda_create(const moe_backend_options* options, moe_backend** out);
void cuda_destroy(moe_backend* be);
const char* cuda_device_description(moe_backend* be);
moe_status cuda_alloc(moe_backend* be, size_t bytes, void** out);
void cuda_free(moe_backend* be, void* ptr);
moe_status cuda_copy_from_host(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cuda_copy_to_host(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cuda_copy(moe_backend* be, void* dst, const void* src, size_t bytes);
moe_status cuda_memset_zero(moe_backend* be, void* dst, size_t bytes);
moe_status cuda_synchronize(moe_backend* be);

moe_status cuda_gemm(moe_backend* be, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const void* a, moe_dtype a_type, int64_t lda, const void* b, moe_dtype b_type, int64_t ldb,
                    float beta, void* c, moe_dtype c_type, int64_t ldc);
moe_status cuda_rmsnorm(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, float eps, moe_tensor* y);
moe_status cuda_rope(moe_backend* be, moe_tensor* x, const moe_tensor* positions, const moe_tensor* cos_table,
                    const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim, int32_t layout);
moe_status cuda_gated_act(moe_backend* be, const moe_tensor* x, int32_t activation, moe_tensor* y);
moe_status cuda_add(moe_backend* be, const moe_tensor* a, const moe_tensor* b, moe_tensor* y);
moe_status cuda_embedding(moe_backend* be, const moe_tensor* ids, const moe_tensor* table, moe_tensor* out);
moe_status cuda_copy_2d(moe_backend* be, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                       int64_t rows, int64_t cols);

moe_status cuda_route_softmax_topk(moe_backend* be, const moe_tensor* logits, int32_t top_k, int32_t normalize,
                                  moe_tensor* ids, moe_tensor* weights);
moe_status cuda_route_sigmoid_group_topk(moe_backend* be, const moe_tensor* logits, const moe_tensor* bias,
                                        int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                        float scaling, moe_tensor* ids, moe_tensor* weights);
moe_status cuda_moe_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* ids, int32_t num_experts,
                           moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source);
moe_status cuda_expert_mlp(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets, const moe_tensor* gate_up,
                          const moe_tensor* down, int32_t activation, moe_tensor* y);
moe_status cuda_moe_unpermute(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                             const moe_tensor* weights, int32_t accumulate, moe_tensor* out);

moe_status cuda_kv_store(moe_backend* be, const moe_tensor* k, const moe_tensor* v, const moe_tensor* slot,
                        const moe_tensor* position, moe_tensor* k_cache, moe_tensor* v_cache);
moe_status cuda_attention(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                         const moe_tensor* slot, const moe_tensor* kv_len, float scale, moe_tensor* out);

// ---- training ----
moe_status cuda_rmsnorm_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, const moe_tensor* dy,
                                float eps, moe_tensor* dx, moe_tensor* dweight);
moe_status cuda_gated_act_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* dy, int32_t activation,
                                  moe_tensor* dx);
moe_status cuda_embedding_backward(moe_backend* be, const moe_tensor* ids, const moe_tensor* dout, moe_tensor* dtable);
moe_status cuda_kv_load(moe_backend* be, const moe_tensor* k_cache, const moe_tensor* v_cache, const moe_tensor* slot,
                       const moe_tensor* position, moe_tensor* k, moe_tensor* v);
moe_status cuda_attention_backward(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                  const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                  float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                  moe_tensor* dk_cache, moe_tensor* dv_cache);
moe_status cuda_route_softmax_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, const moe_tensor* dweights, moe_tensor* dlogits);
moe_status cuda_route_sigmoid_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, float scaling, const moe_tensor* dweights,
                                           moe_tensor* dlogits);
moe_status cuda_moe_unpermute_backward(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                                      const moe_tensor* weights, const moe_tensor* dout, moe_tensor* dy_sorted,
                                      moe_tensor* dweights);
moe_status cuda_expert_mlp_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets,
                                   const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                   const moe_tensor* dy, moe_tensor* dx, moe_tensor* dgate_up, moe_tensor* ddown);
moe_status cuda_cross_entropy(moe_backend* be, const moe_tensor* logits, const moe_tensor* labels, int32_t ignore_index,
                             float label_smoothing, float grad_scale, moe_tensor* loss, moe_tensor* dlogits);
moe_status cuda_adamw_update(moe_backend* be, moe_tensor* param, const moe_tensor* grad, moe_tensor* m, moe_tensor* v,
                            float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step);
moe_status cuda_sum_squares(moe_backend* be, const moe_tensor* x, moe_tensor* out);
moe_status cuda_scale(moe_backend* be, moe_tensor* x, float alpha);
moe_status cuda_add_gumbel_noise(moe_backend* be, moe_tensor* logits, uint64_t seed, uint64_t offset, float scale);

// ---- greedy decoding (ABI 1.3) ----
moe_status cuda_argmax_rows(moe_backend* be, const moe_tensor* x, moe_tensor* out);
// ---- fused decode ops (ABI 1.4, arguments as of 1.5; ABI 1.5) ----
moe_status cuda_route_and_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                                  moe_tensor* h, const moe_tensor* router, int32_t sigmoid, const moe_tensor* bias,
                                  int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                  float scaling, moe_tensor* logits, moe_tensor* ids, moe_tensor* weights,
                                  moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source);
moe_status cuda_rmsnorm_linear(moe_backend* be, const moe_tensor* x, const moe_tensor* norm_weight, float eps,
                               const moe_tensor* w, moe_tensor* h, moe_tensor* y);
moe_status cuda_expert_mlp_unpermute(moe_backend* be, const moe_tensor* x_sorted, const moe_tensor* offsets,
                                     const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                     const moe_tensor* source, const moe_tensor* weights, int32_t accumulate,
                                     moe_tensor* y_sorted, moe_tensor* out);
moe_status cuda_rope_kv_store(moe_backend* be, moe_tensor* q, moe_tensor* k, const moe_tensor* v,
                              const moe_tensor* positions, const moe_tensor* cos_table, const moe_tensor* sin_table,
                              int32_t rot_offset, int32_t rot_dim, int32_t layout, const moe_tensor* slot,
                              moe_tensor* k_cache, moe_tensor* v_cache);

// ---- collectives (NCCL) ----
moe_status cuda_comm_unique_id(moe_backend* be, uint8_t id[MOE_COMM_ID_BYTES]);
moe_status cuda_comm_init(moe_backend* be, const uint8_t id[MOE_COMM_ID_BYTES], int32_t size, int32_t rank,
                          moe_comm** out);
void cuda_comm_destroy(moe_backend* be, moe_comm* comm);
moe_status cuda_all_reduce(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op);
moe_status cuda_all_gather(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y);
moe_status cuda_reduce_scatter(moe_backend* be, moe_comm* comm, const moe_tensor* x, moe_tensor* y, int32_t op);
moe_status cuda_all_to_all(moe_backend* be, moe_comm* comm, const moe_tensor* x, const int64_t* send_counts,
                           moe_tensor* y, const int64_t* recv_counts);

}  // namespace moe_cuda
