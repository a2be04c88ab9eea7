// The plugin's only exported symbol and its op table. moe_plugin_entry and score() make no CUDA call
// that needs a driver to load the library: on a machine without a GPU the host sees score 0.
#include "backend_ops.h"
#include "errors.h"
#include "instance.h"
#include "op_profile.h"
#include "recording.h"

namespace moe_cuda {
namespace {

// The op table, with OP(name) for each op that takes an instance first and returns a status (what
// MOE_CUDA_PROFILE can time), the others named directly.
#define MOE_CUDA_OP_TABLE(OP) \
  { \
    .struct_size = sizeof(moe_backend_ops), \
    .create = cuda_create, \
    .destroy = cuda_destroy, \
    .device_description = cuda_device_description, \
    .alloc = OP(alloc), \
    .free = cuda_free, \
    .copy_from_host = OP(copy_from_host), \
    .copy_to_host = OP(copy_to_host), \
    .copy = OP(copy), \
    .memset_zero = OP(memset_zero), \
    .synchronize = OP(synchronize), \
    .gemm = OP(gemm), \
    .rmsnorm = OP(rmsnorm), \
    .rope = OP(rope), \
    .gated_act = OP(gated_act), \
    .add = OP(add), \
    .embedding = OP(embedding), \
    .copy_2d = OP(copy_2d), \
    .route_softmax_topk = OP(route_softmax_topk), \
    .route_sigmoid_group_topk = OP(route_sigmoid_group_topk), \
    .moe_permute = OP(moe_permute), \
    .expert_mlp = OP(expert_mlp), \
    .moe_unpermute = OP(moe_unpermute), \
    .kv_store = OP(kv_store), \
    .attention = OP(attention), \
    .rmsnorm_backward = OP(rmsnorm_backward), \
    .gated_act_backward = OP(gated_act_backward), \
    .embedding_backward = OP(embedding_backward), \
    .kv_load = OP(kv_load), \
    .attention_backward = OP(attention_backward), \
    .route_softmax_topk_backward = OP(route_softmax_topk_backward), \
    .route_sigmoid_topk_backward = OP(route_sigmoid_topk_backward), \
    .moe_unpermute_backward = OP(moe_unpermute_backward), \
    .expert_mlp_backward = OP(expert_mlp_backward), \
    .cross_entropy = OP(cross_entropy), \
    .adamw_update = OP(adamw_update), \
    .sum_squares = OP(sum_squares), \
    .scale = OP(scale), \
    .add_gumbel_noise = OP(add_gumbel_noise), \
    .comm_unique_id = OP(comm_unique_id), \
    .comm_init = OP(comm_init), \
    .comm_destroy = cuda_comm_destroy, \
    .all_reduce = OP(all_reduce), \
    .all_gather = OP(all_gather), \
    .reduce_scatter = OP(reduce_scatter), \
    .all_to_all = OP(all_to_all), \
    .record_begin = OP(record_begin), \
    .record_end = OP(record_end), \
    .replay_step = OP(replay_step), \
    .destroy_step = cuda_destroy_step, \
    .argmax_rows = OP(argmax_rows), \
    .route_and_permute = OP(route_and_permute), \
    .rmsnorm_linear = OP(rmsnorm_linear), \
    .expert_mlp_unpermute = OP(expert_mlp_unpermute), \
    .rope_kv_store = OP(rope_kv_store), \
  }

#define MOE_CUDA_PLAIN_OP(name) cuda_##name
const moe_backend_ops kOps = MOE_CUDA_OP_TABLE(MOE_CUDA_PLAIN_OP);

// The same ops timed one by one (op_profile.h); their names for the report.
constexpr char k_alloc[] = "alloc";
constexpr char k_copy_from_host[] = "copy_from_host";
constexpr char k_copy_to_host[] = "copy_to_host";
constexpr char k_copy[] = "copy";
constexpr char k_memset_zero[] = "memset_zero";
constexpr char k_synchronize[] = "synchronize";
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
constexpr char k_comm_unique_id[] = "comm_unique_id";
constexpr char k_comm_init[] = "comm_init";
constexpr char k_all_reduce[] = "all_reduce";
constexpr char k_all_gather[] = "all_gather";
constexpr char k_reduce_scatter[] = "reduce_scatter";
constexpr char k_all_to_all[] = "all_to_all";
constexpr char k_record_begin[] = "record_begin";
constexpr char k_record_end[] = "record_end";
constexpr char k_replay_step[] = "replay_step";
constexpr char k_argmax_rows[] = "argmax_rows";
constexpr char k_route_and_permute[] = "route_and_permute";
constexpr char k_rmsnorm_linear[] = "rmsnorm_linear";
constexpr char k_expert_mlp_unpermute[] = "expert_mlp_unpermute";
constexpr char k_rope_kv_store[] = "rope_kv_store";
#define MOE_CUDA_PROFILED_OP(name) Profiled<cuda_##name, k_##name>::call
const moe_backend_ops kProfiledOps = MOE_CUDA_OP_TABLE(MOE_CUDA_PROFILED_OP);

const moe_plugin_descriptor kDescriptor = {
    sizeof(moe_plugin_descriptor), MOE_PLUGIN_ABI_VERSION, MOE_PLUGIN_KIND_BACKEND, "cuda", MOE_CUDA_BACKEND_VERSION,
    score, &kOps,
};
const moe_plugin_descriptor kProfiledDescriptor = {
    sizeof(moe_plugin_descriptor), MOE_PLUGIN_ABI_VERSION, MOE_PLUGIN_KIND_BACKEND, "cuda", MOE_CUDA_BACKEND_VERSION,
    score, &kProfiledOps,
};

}  // namespace
}  // namespace moe_cuda

extern "C" MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* host) {
  moe_cuda::set_host(host);
  return moe_cuda::profiling_enabled() ? &moe_cuda::kProfiledDescriptor : &moe_cuda::kDescriptor;
}
