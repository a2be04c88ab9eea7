// The forward pass shared by the decoder-only MoE architectures: embedding, then per layer
// RMSNorm -> attention (GQA or MLA) -> residual, RMSNorm -> dense MLP or MoE (routed + shared
// experts) -> residual, then the final norm and the LM head for the rows asked for.
//
// Inference holds no per-call state, so several threads may run forward() on one Transformer at
// once, each with its own KvCache. Training runs the same code with a TrainingPass: the tape records
// every step's backward, trainable weights get gradient slots, and LoRA adapters join their linears.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "tensor/tensor.h"
#include "train/functions.h"

namespace moe {

// Tokens of one step, packed: token t of the step belongs to cache slot slot[t] at position
// position[t] and attends to positions 0..position[t] of its slot.
struct TokenBatch {
  std::vector<int32_t> ids;
  std::vector<int32_t> slot;
  std::vector<int32_t> position;
  std::vector<int64_t> logit_rows;  // token indices whose logits are computed, in output order
};

// A low-rank adapter on one linear weight W [out, in]: W x + scale * B (A x), A [rank, in], B [out, rank].
struct LoraAdapter {
  ad::Var a, b;
  float scale = 1.f;
};

// What a training forward pass needs beyond inference, and what it hands back.
struct TrainingPass {
  ad::Tape* tape = nullptr;
  // Gradient slots of trainable weights, by the weight tensor's data pointer (absent: frozen).
  std::unordered_map<const void*, std::shared_ptr<Tensor>> grads;
  // LoRA adapters by the data pointer of the weight they adapt (a stacked routed-expert tensor's
  // adapter holds one A and B per expert).
  std::unordered_map<const void*, LoraAdapter> lora;
  // Router exploration: Gumbel noise on the logits, at this temperature, from this seed.
  bool gumbel = false;
  float temperature = 1.f;
  uint64_t noise_seed = 0;
  // Expert capacity (ad::MoeRouting::capacity_factor); 0: dropless.
  float capacity_factor = 0.f;
  // Filled by forward(): each MoE layer's router logits (f32 [tokens, experts], with gradient slots),
  // chosen experts (i32 [tokens, top_k]) and assignments dropped for capacity.
  std::vector<ad::Var> router_logits;
  std::vector<Tensor> expert_ids;
  std::vector<int64_t> dropped;
  ad::Var logits;  // the returned logits with their gradient slot
};

// A step's token inputs on the backend, views of one i32 [4, tokens] block (one copy from the host):
// ids, cache slots, positions and kv_len = position + 1.
struct DeviceTokens {
  Tensor block, ids, slot, position, kv_len;
  // Uninitialised inputs for `tokens` tokens; fill() copies a batch in.
  static DeviceTokens allocate(Backend& backend, int64_t tokens, Lifetime lifetime = Lifetime::kActivation);
  void fill(const TokenBatch& batch);
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, const ModelWeights& weights, Backend& backend);

  // f32 logits [logit_rows, vocab] on the backend.
  Tensor forward(const TokenBatch& batch, KvCache& cache, TrainingPass* train = nullptr) const;
  // f32 logits [tokens, vocab] of every token of inputs already on the backend. Copies nothing to or from
  // the host, so a backend can record it (RecordedStep) and replay it with new inputs.
  Tensor forward_all_rows(const DeviceTokens& tokens, KvCache& cache) const;
  // The final-norm hidden states [logit_rows, hidden] (what a task head reads instead of the LM head).
  ad::Var hidden_states(const TokenBatch& batch, KvCache& cache, TrainingPass* train = nullptr) const;

 private:
  struct Step;
  // A block's input x and the RMSNorm ahead of the block. An inference path that reads the norm's output
  // with one op passes x and the norm to an op that applies it (ops::rmsnorm_linear,
  // ops::route_and_permute), so a recorded decode step runs the norm inside that op's kernel; the others
  // take normed().
  struct NormedInput {
    ad::Var x;
    ad::Var weight;
    float eps = 0.f;
    ad::Var normed(ad::Tape* tape) const;
  };
  // Everything but the inputs' upload and the final norm; logit_rows == nullptr means every row.
  ad::Var run_layers(const DeviceTokens& tokens, const std::vector<int64_t>* logit_rows, KvCache& cache,
                     TrainingPass* train) const;
  ad::Var weight(const Tensor& w, const Step& s) const;
  // The weight with its LoRA adapter added when it has one (routed experts), else weight().
  ad::Var adapted_weight(const Tensor& w, const Step& s) const;
  ad::Var project(const ad::Var& x, const Tensor& w, const Step& s) const;
  ad::Var project_residual(const ad::Var& x, const Tensor& w, const ad::Var& residual, const Step& s) const;
  // The final-norm hidden states of run_layers' rows, and the logits computed from them.
  ad::Var final_norm(const ad::Var& x, const Step& s) const;
  ad::Var logits_of(const ad::Var& x, const Step& s) const;
  ad::Var gqa_attention(const AttentionWeights& w, const NormedInput& in, const Step& s, Tensor& k_cache,
                        Tensor& v_cache) const;
  ad::Var mla_attention(const AttentionWeights& w, const ad::Var& h, const Step& s, Tensor& k_cache,
                        Tensor& v_cache) const;
  // MLA attending over a latent (compressed) cache, inference only (kv_cache.h).
  Tensor mla_attention_latent(const AttentionWeights& w, const Tensor& h, const Step& s, Tensor& k_cache,
                              Tensor& v_cache) const;
  ad::Var add_mlp(const MlpWeights& w, const ad::Var& h, const ad::Var& x, const Step& s) const;
  ad::Var add_moe(const MoeWeights& w, const NormedInput& in, size_t layer, const Step& s) const;

  const ModelConfig& config_;
  const ModelWeights& weights_;
  Backend& backend_;
  ad::RopeTables rope_;
};

}  // namespace moe
