// Routers: logits [tokens, experts] -> top_k expert ids (best first) and weights, one thread per token
// (experts per token are few; the work is tiny next to the products around it).
#include <string>
#include <tuple>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_math.cuh"
#include "tensor_checks.h"
#include "top_k.cuh"
#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

__global__ void route_softmax(const float* logits, int64_t tokens, int64_t experts, int top_k, bool normalize,
                              int32_t* ids, float* weights) {
  pdl_wait_and_release();
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  const float* row = logits + t * experts;
  // softmax is monotonic: choosing by logits is choosing by probability, without the ties that rounding
  // the probabilities could add.
  TopK best(top_k);
  float largest = -INFINITY;
  for (int64_t e = 0; e < experts; ++e) {
    best.offer(row[e], static_cast<int32_t>(e));
    largest = row[e] > largest ? row[e] : largest;
  }
  float sum = 0.f, chosen = 0.f;
  for (int64_t e = 0; e < experts; ++e) sum += expf(row[e] - largest);
  for (int j = 0; j < top_k; ++j) chosen += expf(row[best.ids[j]] - largest);
  const float divisor = normalize ? chosen : sum;
  for (int j = 0; j < top_k; ++j) {
    ids[t * top_k + j] = best.ids[j];
    weights[t * top_k + j] = expf(row[best.ids[j]] - largest) / divisor;
  }
}

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void route_sigmoid_groups(const float* logits, const float* bias, int64_t tokens, int64_t experts,
                                     int n_group, int topk_group, int top_k, bool normalize, float scaling,
                                     int32_t* ids, float* weights) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  const float* row = logits + t * experts;
  const int64_t group_size = experts / n_group;
  auto choice = [&](int64_t e) { return bias ? sigmoid(row[e]) + bias[e] : sigmoid(row[e]); };
  // A group's score: the sum of its two best choice values (its only one for groups of one).
  TopK groups(topk_group);
  for (int g = 0; g < n_group; ++g) {
    float first = -INFINITY, second = -INFINITY;
    for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e) {
      const float v = rank_value(choice(e));
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    }
    groups.offer(group_size >= 2 ? first + second : first, g);
  }
  // Experts of the other groups are out, whatever their values.
  TopK best(top_k);
  for (int g = 0; g < n_group; ++g)
    if (groups.contains(g))
      for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e) best.offer(choice(e), static_cast<int32_t>(e));
  double sum = 0;
  for (int j = 0; j < top_k; ++j) sum += sigmoid(row[best.ids[j]]);
  for (int j = 0; j < top_k; ++j) {
    const double s = sigmoid(row[best.ids[j]]);
    ids[t * top_k + j] = best.ids[j];
    weights[t * top_k + j] = static_cast<float>((normalize ? s / (sum + 1e-20) : s) * scaling);
  }
}

// logits [tokens, experts]; ids i32 and weights f32 [tokens, top_k]. Returns tokens.
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

}  // namespace

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
    if (tokens == 0) return;
    route_sigmoid_groups<<<grid_for(tokens, 128), 128, 0, b.stream>>>(
        data_of<const float>(logits), bias ? data_of<const float>(bias) : nullptr, tokens, experts, n_group,
        topk_group, top_k, normalize != 0, scaling, data_of<int32_t>(ids), data_of<float>(weights));
    check_launch("route_sigmoid_groups");
  });
}

}  // namespace moe_cuda
