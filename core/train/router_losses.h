// Auxiliary losses on the routers, computed on the host from each MoE layer's router logits (small:
// tokens x experts) with their gradients, which the trainer adds to the logits' gradient slots
// before the backward pass.
#pragma once

#include <cstdint>
#include <vector>

namespace moe {

struct RouterLayer {
  std::vector<float> logits;  // [tokens, experts]
  std::vector<int32_t> ids;   // [tokens, top_k]: the experts the forward pass chose
  std::vector<float> dlogits; // [tokens, experts]: accumulated by the losses below
};

// Switch Transformer / Mixtral load balancing, as transformers' load_balancing_loss_func computes it
// over all layers: E * sum_e (assignments to e / rows) * (mean softmax probability of e), rows being
// tokens x layers; the assignment counts come from the plain softmax top-k and carry no gradient.
// Adds coef * d(loss)/d(logits) to each layer's dlogits; returns the loss (without coef).
double load_balancing_loss(std::vector<RouterLayer>& layers, int64_t experts, int top_k, double coef);

// ST-MoE router z-loss: mean over rows of logsumexp(logits)^2, over all layers.
double router_z_loss(std::vector<RouterLayer>& layers, int64_t experts, double coef);

// DeepSeek-V3's sequence-wise balance loss, per layer and sequence: sum_i f_i * P_i with
// f_i = E / (K * T) * (tokens of the sequence choosing i) and P_i the mean over the sequence of
// s_i / sum_j s_j (s = sigmoid(logits)); averaged over sequences, summed over layers.
double sequence_balance_loss(std::vector<RouterLayer>& layers, const std::vector<int64_t>& sequence_lengths,
                             int64_t experts, int top_k, double coef);

// Assignments per expert in one layer.
std::vector<int64_t> expert_load(const RouterLayer& layer, int64_t experts);

}  // namespace moe
