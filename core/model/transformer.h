// The forward pass shared by the decoder-only MoE architectures: embedding, then per layer
// RMSNorm -> attention (GQA or MLA) -> residual, RMSNorm -> dense MLP or MoE (routed + shared
// experts) -> residual, then the final norm and the LM head for the rows asked for.
//
// It holds no per-call state, so several threads may run forward() on one Transformer at once,
// each with its own KvCache.
#pragma once

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "tensor/tensor.h"

namespace moe {

// Tokens of one step, packed: token t of the step belongs to cache slot slot[t] at position
// position[t] and attends to positions 0..position[t] of its slot.
struct TokenBatch {
  std::vector<int32_t> ids;
  std::vector<int32_t> slot;
  std::vector<int32_t> position;
  std::vector<int64_t> logit_rows;  // token indices whose logits are computed, in output order
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, const ModelWeights& weights, Backend& backend);

  // f32 logits [logit_rows, vocab] on the backend.
  Tensor forward(const TokenBatch& batch, KvCache& cache) const;

 private:
  struct StepTensors;
  Tensor attention(const LayerWeights& w, const Tensor& h, const StepTensors& step, KvCache& cache,
                   size_t layer) const;
  Tensor gqa_attention(const AttentionWeights& w, const Tensor& h, const StepTensors& step, Tensor& k_cache,
                       Tensor& v_cache) const;
  Tensor mla_attention(const AttentionWeights& w, const Tensor& h, const StepTensors& step, Tensor& k_cache,
                       Tensor& v_cache) const;
  void add_mlp(const MlpWeights& w, const Tensor& h, Tensor& x) const;
  void add_moe(const MoeWeights& w, const Tensor& h, Tensor& x) const;

  const ModelConfig& config_;
  const ModelWeights& weights_;
  Backend& backend_;
  Tensor rope_cos_, rope_sin_;
};

}  // namespace moe
