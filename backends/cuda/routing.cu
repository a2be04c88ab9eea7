// Routers: logits [tokens, experts] -> top_k expert ids (best first) and weights, one thread per token
// (experts per token are few; the work is tiny next to the products around it).
#include <string>
#include <tuple>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_math.cuh"
#include "tensor_checks.h"
#include "routing.h"
#include "routing_device.cuh"
#include "top_k.cuh"
#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

__global__ void route_softmax(const float* logits, int64_t tokens, int64_t experts, int top_k, bool normalize,
                              int32_t* ids, float* weights) {
  pdl_wait_and_release();
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  route_token_softmax(logits + t * experts, experts, top_k, normalize, ids + t * top_k, weights + t * top_k);
}

__global__ void route_sigmoid_groups(const float* logits, const float* bias, int64_t tokens, int64_t experts,
                                     int n_group, int topk_group, int top_k, bool normalize, float scaling,
                                     int32_t* ids, float* weights) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  route_token_sigmoid(logits + t * experts, bias, experts, n_group, topk_group, top_k, normalize, scaling,
                      ids + t * top_k, weights + t * top_k);
}

}  // namespace

int64_t check_router(const moe_tensor* logits, int32_t top_k, const moe_tensor* ids, const moe_tensor* weights) {
  check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
  const int64_t tokens = logits->shape[0], experts = logits->shape[1];
  if (top_k < 1 || top_k > experts)
    invalid("top_k=" + std::to_string(top_k) + " is outside [1, experts = " + std::to_string(experts) + "]");
  if (top_k > kMaxTopK)
    fail(MOE_ERR_UNSUPPORTED, "top_k=" + std::to_string(top_k) + " is more than the CUDA backend's routers take (" +
                                  std::to_string(kMaxTopK) + ")");
  if (experts > INT32_MAX) invalid("logits " + shape_string(*logits) + " has more experts than i32 ids can name");
  for (auto [t, name, dtype] : {std::tuple{ids, "ids", MOE_DTYPE_I32}, std::tuple{weights, "weights", MOE_DTYPE_F32}}) {
    check_tensor(t, name, dtype, 2);
    if (t->shape[0] != tokens || t->shape[1] != top_k)
      invalid(std::string(name) + " " + shape_string(*t) + " must be [tokens = " + std::to_string(tokens) +
              ", top_k = " + std::to_string(top_k) + "]");
  }
  return tokens;
}

void check_sigmoid_router(int64_t experts, const moe_tensor* bias, int32_t n_group, int32_t topk_group, int32_t top_k) {
  if (n_group < 1 || experts % n_group)
    invalid("n_group=" + std::to_string(n_group) + " does not divide the " + std::to_string(experts) + " experts");
  const int64_t group_size = experts / n_group;
  if (topk_group < 1 || topk_group > n_group)
    invalid("topk_group=" + std::to_string(topk_group) + " is outside [1, n_group = " + std::to_string(n_group) +
            "]");
  if (top_k > topk_group * group_size)
    invalid("top_k=" + std::to_string(top_k) + " is more than the " + std::to_string(topk_group * group_size) +
            " experts of the chosen groups");
  if (topk_group > kMaxTopK)
    fail(MOE_ERR_UNSUPPORTED, "topk_group=" + std::to_string(topk_group) +
                                  " is more than the CUDA backend's router takes (" + std::to_string(kMaxTopK) +
                                  ")");
  if (bias && check_tensor(bias, "bias", MOE_DTYPE_F32, -1) != experts)
    invalid("bias " + shape_string(*bias) + " must have one entry per expert (" + std::to_string(experts) + ")");
}

moe_status cuda_route_softmax_topk(moe_backend* be, const moe_tensor* logits, int32_t top_k, int32_t normalize,
                                   moe_tensor* ids, moe_tensor* weights) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t tokens = check_router(logits, top_k, ids, weights);
    if (tokens == 0) return;
    launch_pdl(b, "route_softmax", route_softmax, grid_for(tokens, 128), 128, 0, data_of<const float>(logits), tokens,
               logits->shape[1], top_k, normalize != 0, data_of<int32_t>(ids), data_of<float>(weights));
  });
}

moe_status cuda_route_sigmoid_group_topk(moe_backend* be, const moe_tensor* logits, const moe_tensor* bias,
                                         int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                         float scaling, moe_tensor* ids, moe_tensor* weights) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t tokens = check_router(logits, top_k, ids, weights);
    const int64_t experts = logits->shape[1];
    check_sigmoid_router(experts, bias, n_group, topk_group, top_k);
    if (tokens == 0) return;
    route_sigmoid_groups<<<grid_for(tokens, 128), 128, 0, b.stream>>>(
        data_of<const float>(logits), bias ? data_of<const float>(bias) : nullptr, tokens, experts, n_group,
        topk_group, top_k, normalize != 0, scaling, data_of<int32_t>(ids), data_of<float>(weights));
    check_launch("route_sigmoid_groups");
  });
}

}  // namespace moe_cuda
