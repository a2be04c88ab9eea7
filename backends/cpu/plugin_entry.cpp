// The plugin's only exported symbol. This file is compiled for baseline x86-64 (see CMakeLists.txt):
// the host calls moe_plugin_entry and score() before anything else, and on a CPU without the
// instruction set the rest of the plugin is built for, score() says 0 instead of the process dying.
#include "backend_ops.h"
#include "errors.h"

namespace moe_cpu {
namespace {

int32_t score() { return __builtin_cpu_supports("x86-64-v3") ? 1 : 0; }

const moe_backend_ops kOps = {
    .struct_size = sizeof(moe_backend_ops),
    .create = cpu_create,
    .destroy = cpu_destroy,
    .device_description = cpu_device_description,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_from_host = cpu_copy_from_host,
    .copy_to_host = cpu_copy_to_host,
    .copy = cpu_copy,
    .memset_zero = cpu_memset_zero,
    .synchronize = cpu_synchronize,
    .gemm = cpu_gemm,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .gated_act = cpu_gated_act,
    .add = cpu_add,
    .embedding = cpu_embedding,
    .copy_2d = cpu_copy_2d,
    .route_softmax_topk = cpu_route_softmax_topk,
    .route_sigmoid_group_topk = cpu_route_sigmoid_group_topk,
    .moe_permute = cpu_moe_permute,
    .expert_mlp = cpu_expert_mlp,
    .moe_unpermute = cpu_moe_unpermute,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .gated_act_backward = cpu_gated_act_backward,
    .embedding_backward = cpu_embedding_backward,
    .kv_load = cpu_kv_load,
    .attention_backward = cpu_attention_backward,
    .route_softmax_topk_backward = cpu_route_softmax_topk_backward,
    .route_sigmoid_topk_backward = cpu_route_sigmoid_topk_backward,
    .moe_unpermute_backward = cpu_moe_unpermute_backward,
    .expert_mlp_backward = cpu_expert_mlp_backward,
    .cross_entropy = cpu_cross_entropy,
    .adamw_update = cpu_adamw_update,
    .sum_squares = cpu_sum_squares,
    .scale = cpu_scale,
    .add_gumbel_noise = cpu_add_gumbel_noise,
    // No collectives: one instance already spreads its work over every core of the process, and
    // joining processes (multi-node CPU training) would need a transport this plugin does not carry.
    // The core reports MOE_ERR_UNSUPPORTED for them.
    .comm_unique_id = nullptr,
    .comm_init = nullptr,
    .comm_destroy = nullptr,
    .all_reduce = nullptr,
    .all_gather = nullptr,
    .reduce_scatter = nullptr,
    .all_to_all = nullptr,
};

const moe_plugin_descriptor kDescriptor = {
    sizeof(moe_plugin_descriptor), MOE_PLUGIN_ABI_VERSION, MOE_PLUGIN_KIND_BACKEND, "cpu", MOE_CPU_BACKEND_VERSION,
    score, &kOps,
};

}  // namespace
}  // namespace moe_cpu

extern "C" MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(
    const moe_host_api* host) {
  moe_cpu::set_host(host);
  return &moe_cpu::kDescriptor;
}
