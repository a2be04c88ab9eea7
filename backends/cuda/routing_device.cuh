// The routers' work for one token, shared by the router kernels (routing.cu) and by route_and_permute's
// one-block kernel (route_and_permute.cu), so that both give the same ids and weights bit for bit.
#pragma once

#include <cstdint>

#include "top_k.cuh"

namespace moe_cuda {

// row: the token's logits [experts]; ids, weights: its top_k outputs, best first.
__device__ inline void route_token_softmax(const float* row, int64_t experts, int top_k, bool normalize, int32_t* ids,
                                           float* weights) {
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
    ids[j] = best.ids[j];
    weights[j] = expf(row[best.ids[j]] - largest) / divisor;
  }
}

__device__ __forceinline__ float router_sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// DeepSeek-V3's router for one token (moe_plugin.h's route_sigmoid_group_topk); bias may be null.
__device__ inline void route_token_sigmoid(const float* row, const float* bias, int64_t experts, int n_group,
                                           int topk_group, int top_k, bool normalize, float scaling, int32_t* ids,
                                           float* weights) {
  const int64_t group_size = experts / n_group;
  auto choice = [&](int64_t e) { return bias ? router_sigmoid(row[e]) + bias[e] : router_sigmoid(row[e]); };
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
  for (int j = 0; j < top_k; ++j) sum += router_sigmoid(row[best.ids[j]]);
  for (int j = 0; j < top_k; ++j) {
    const double s = router_sigmoid(row[best.ids[j]]);
    ids[j] = best.ids[j];
    weights[j] = static_cast<float>((normalize ? s / (sum + 1e-20) : s) * scaling);
  }
}

}  // namespace moe_cuda
