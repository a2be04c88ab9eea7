// The plugin's only exported symbol and its op table. moe_plugin_entry and score() make no CUDA call
// that needs a driver to load the library: on a machine without a GPU the host sees score 0.
#include "backend_ops.h"
#include "errors.h"
#include "instance.h"

namespace moe_cuda {
namespace {

const moe_backend_ops kOps = {
    .struct_size = sizeof(moe_backend_ops),
    .create = cuda_create,
    .destroy = cuda_destroy,
    .device_description = cuda_device_description,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_from_host = cuda_copy_from_host,
    .copy_to_host = cuda_copy_to_host,
    .copy = cuda_copy,
    .memset_zero = cuda_memset_zero,
    .synchronize = cuda_synchronize,
    .gemm = cuda_gemm,
    .rmsnorm = cuda_rmsnorm,
    .rope = cuda_rope,
    .gated_act = cuda_gated_act,
    .add = cuda_add,
    .embedding = cuda_embedding,
    .copy_2d = cuda_copy_2d,
    .route_softmax_topk = cuda_route_softmax_topk,
    .route_sigmoid_group_topk = cuda_route_sigmoid_group_topk,
    .moe_permute = cuda_moe_permute,
    .expert_mlp = cuda_expert_mlp,
    .moe_unpermute = cuda_moe_unpermute,
    .kv_store = cuda_kv_store,
    .attention = cuda_attention,
    .rmsnorm_backward = cuda_rmsnorm_backward,
    .gated_act_backward = cuda_gated_act_backward,
    .embedding_backward = cuda_embedding_backward,
    .kv_load = cuda_kv_load,
    .attention_backward = cuda_attention_backward,
    .route_softmax_topk_backward = cuda_route_softmax_topk_backward,
    .route_sigmoid_topk_backward = cuda_route_sigmoid_topk_backward,
    .moe_unpermute_backward = cuda_moe_unpermute_backward,
    .expert_mlp_backward = cuda_expert_mlp_backward,
    .cross_entropy = cuda_cross_entropy,
    .adamw_update = cuda_adamw_update,
    .sum_squares = cuda_sum_squares,
    .scale = cuda_scale,
    .add_gumbel_noise = cuda_add_gumbel_noise,
    .comm_unique_id = cuda_comm_unique_id,
    .comm_init = cuda_comm_init,
    .comm_destroy = cuda_comm_destroy,
    .all_reduce = cuda_all_reduce,
    .all_gather = cuda_all_gather,
    .reduce_scatter = cuda_reduce_scatter,
    .all_to_all = cuda_all_to_all,
};

const moe_plugin_descriptor kDescriptor = {
    sizeof(moe_plugin_descriptor), MOE_PLUGIN_ABI_VERSION, MOE_PLUGIN_KIND_BACKEND, "cuda", MOE_CUDA_BACKEND_VERSION,
    score, &kOps,
};

}  // namespace
}  // namespace moe_cuda

extern "C" MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* host) {
  moe_cuda::set_host(host);
  return &moe_cuda::kDescriptor;
}
