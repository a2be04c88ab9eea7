// The plugin's only exported symbol and the op table (the ops that may be recorded go through
// Recordable, recordable_op.h). This file is compiled for baseline x86-64 (see CMakeLists.txt):
// the host calls moe_plugin_entry and score() before anything else, and on a CPU without the
// instruction set the rest of the plugin is built for, score() says 0 instead of the process dying.
#include "backend_ops.h"
#include "errors.h"
#include "recordable_op.h"

namespace moe_cpu {
namespace {

int32_t score() { return __builtin_cpu_supports("x86-64-v3") ? 1 : 0; }

// Names of the recordable ops, for the message of a replay that fails (recording.h).
constexpr char k_copy[] = "copy";
constexpr char k_memset_zero[] = "memset_zero";
constexpr char k_gemm[] = "gemm";
constexpr char k_rmsnorm[] = "rmsnorm";
constexpr char k_rope[] = "rope";
constexpr char k_gated_act[] = "gated_act";
constexpr char k_add[] = "add";
constexpr char k_embedding[] = "embedding";
constexpr char k_copy_2d[] = "copy_2d";
constexpr char k_route_softmax_topk[] = "route_softmax_topk";
constexpr char k_route_sigmoid_group_topk[] = "route_sigmoid_group_topk";
constexpr char k_moe_permute[] = "moe_permute";
constexpr char k_expert_mlp[] = "expert_mlp";
constexpr char k_moe_unpermute[] = "moe_unpermute";
constexpr char k_kv_store[] = "kv_store";
constexpr char k_attention[] = "attention";
constexpr char k_rmsnorm_backward[] = "rmsnorm_backward";
constexpr char k_gated_act_backward[] = "gated_act_backward";
constexpr char k_embedding_backward[] = "embedding_backward";
constexpr char k_kv_load[] = "kv_load";
constexpr char k_attention_backward[] = "attention_backward";
constexpr char k_route_softmax_topk_backward[] = "route_softmax_topk_backward";
constexpr char k_route_sigmoid_topk_backward[] = "route_sigmoid_topk_backward";
constexpr char k_moe_unpermute_backward[] = "moe_unpermute_backward";
constexpr char k_expert_mlp_backward[] = "expert_mlp_backward";
constexpr char k_cross_entropy[] = "cross_entropy";
constexpr char k_adamw_update[] = "adamw_update";
constexpr char k_sum_squares[] = "sum_squares";
constexpr char k_scale[] = "scale";
constexpr char k_add_gumbel_noise[] = "add_gumbel_noise";
constexpr char k_argmax_rows[] = "argmax_rows";
constexpr char k_route_and_permute[] = "route_and_permute";
constexpr char k_rmsnorm_linear[] = "rmsnorm_linear";
constexpr char k_expert_mlp_unpermute[] = "expert_mlp_unpermute";
constexpr char k_rope_kv_store[] = "rope_kv_store";

const moe_backend_ops kOps = {
    .struct_size = sizeof(moe_backend_ops),
    .create = cpu_create,
    .destroy = cpu_destroy,
    .device_description = cpu_device_description,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_from_host = cpu_copy_from_host,
    .copy_to_host = cpu_copy_to_host,
    .copy = Recordable<cpu_copy, k_copy>::call,
    .memset_zero = Recordable<cpu_memset_zero, k_memset_zero>::call,
    .synchronize = cpu_synchronize,
    .gemm = Recordable<cpu_gemm, k_gemm>::call,
    .rmsnorm = Recordable<cpu_rmsnorm, k_rmsnorm>::call,
    .rope = Recordable<cpu_rope, k_rope>::call,
    .gated_act = Recordable<cpu_gated_act, k_gated_act>::call,
    .add = Recordable<cpu_add, k_add>::call,
    .embedding = Recordable<cpu_embedding, k_embedding>::call,
    .copy_2d = Recordable<cpu_copy_2d, k_copy_2d>::call,
    .route_softmax_topk = Recordable<cpu_route_softmax_topk, k_route_softmax_topk>::call,
    .route_sigmoid_group_topk = Recordable<cpu_route_sigmoid_group_topk, k_route_sigmoid_group_topk>::call,
    .moe_permute = Recordable<cpu_moe_permute, k_moe_permute>::call,
    .expert_mlp = Recordable<cpu_expert_mlp, k_expert_mlp>::call,
    .moe_unpermute = Recordable<cpu_moe_unpermute, k_moe_unpermute>::call,
    .kv_store = Recordable<cpu_kv_store, k_kv_store>::call,
    .attention = Recordable<cpu_attention, k_attention>::call,
    .rmsnorm_backward = Recordable<cpu_rmsnorm_backward, k_rmsnorm_backward>::call,
    .gated_act_backward = Recordable<cpu_gated_act_backward, k_gated_act_backward>::call,
    .embedding_backward = Recordable<cpu_embedding_backward, k_embedding_backward>::call,
    .kv_load = Recordable<cpu_kv_load, k_kv_load>::call,
    .attention_backward = Recordable<cpu_attention_backward, k_attention_backward>::call,
    .route_softmax_topk_backward = Recordable<cpu_route_softmax_topk_backward, k_route_softmax_topk_backward>::call,
    .route_sigmoid_topk_backward = Recordable<cpu_route_sigmoid_topk_backward, k_route_sigmoid_topk_backward>::call,
    .moe_unpermute_backward = Recordable<cpu_moe_unpermute_backward, k_moe_unpermute_backward>::call,
    .expert_mlp_backward = Recordable<cpu_expert_mlp_backward, k_expert_mlp_backward>::call,
    .cross_entropy = Recordable<cpu_cross_entropy, k_cross_entropy>::call,
    .adamw_update = Recordable<cpu_adamw_update, k_adamw_update>::call,
    .sum_squares = Recordable<cpu_sum_squares, k_sum_squares>::call,
    .scale = Recordable<cpu_scale, k_scale>::call,
    .add_gumbel_noise = Recordable<cpu_add_gumbel_noise, k_add_gumbel_noise>::call,
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
    .record_begin = cpu_record_begin,
    .record_end = cpu_record_end,
    .replay_step = cpu_replay_step,
    .destroy_step = cpu_destroy_step,
    .argmax_rows = Recordable<cpu_argmax_rows, k_argmax_rows>::call,
    .route_and_permute = Recordable<cpu_route_and_permute, k_route_and_permute>::call,
    .rmsnorm_linear = Recordable<cpu_rmsnorm_linear, k_rmsnorm_linear>::call,
    .expert_mlp_unpermute = Recordable<cpu_expert_mlp_unpermute, k_expert_mlp_unpermute>::call,
    .rope_kv_store = Recordable<cpu_rope_kv_store, k_rope_kv_store>::call,
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
