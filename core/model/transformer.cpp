#include "model/transformer.h"

#include <cmath>

#include "base/error.h"
#include "tensor/backend.h"
#include "tensor/ops.h"

namespace moe {

// Per-step index tensors on the backend.
struct Transformer::StepTensors {
  int64_t tokens;
  Tensor slot, position, kv_len;
};

namespace {
// transformers builds DeepSeek-V3's q_a_layernorm and kv_a_layernorm without passing eps, so they
// use DeepseekV3RMSNorm's default.
constexpr float kMlaNormEps = 1e-6f;
}  // namespace

Transformer::Transformer(const ModelConfig& config, const ModelWeights& weights, Backend& backend)
    : config_(config), weights_(weights), backend_(backend) {
  RopeTables tables = make_rope_tables(config.rope, static_cast<int>(config.max_position_embeddings));
  Shape shape{tables.positions, tables.half};
  rope_cos_ = Tensor::from_host(backend, MOE_DTYPE_F32, shape, tables.cos.data(), Lifetime::kPersistent);
  rope_sin_ = Tensor::from_host(backend, MOE_DTYPE_F32, shape, tables.sin.data(), Lifetime::kPersistent);
}

Tensor Transformer::forward(const TokenBatch& batch, KvCache& cache) const {
  const int64_t tokens = static_cast<int64_t>(batch.ids.size());
  StepTensors step{tokens, {}, {}, {}};
  std::vector<int32_t> kv_len(batch.position.size());
  for (size_t t = 0; t < kv_len.size(); ++t) kv_len[t] = batch.position[t] + 1;
  step.slot = Tensor::from_host(backend_, MOE_DTYPE_I32, {tokens}, batch.slot.data());
  step.position = Tensor::from_host(backend_, MOE_DTYPE_I32, {tokens}, batch.position.data());
  step.kv_len = Tensor::from_host(backend_, MOE_DTYPE_I32, {tokens}, kv_len.data());
  Tensor ids = Tensor::from_host(backend_, MOE_DTYPE_I32, {tokens}, batch.ids.data());

  Tensor x = ops::embedding(ids, weights_.embed_tokens);
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const LayerWeights& w = weights_.layers[l];
    Tensor h = ops::rmsnorm(x, w.input_norm, eps);
    Tensor attn = attention(w, h, step, cache, l);
    ops::linear_accumulate(attn, w.attn.o_proj, x);
    ops::rmsnorm(x, w.post_attention_norm, eps, h);
    if (config_.is_moe_layer(static_cast<int64_t>(l)))
      add_moe(w.moe, h, x);
    else
      add_mlp(w.mlp, h, x);
  }

  // Only the rows asked for go through the final norm and the LM head.
  Tensor rows = x;
  const int64_t wanted = static_cast<int64_t>(batch.logit_rows.size());
  bool all_rows = wanted == tokens;
  for (int64_t i = 0; all_rows && i < wanted; ++i) all_rows = batch.logit_rows[i] == i;
  if (!all_rows) {
    std::vector<int32_t> row_ids(batch.logit_rows.begin(), batch.logit_rows.end());
    rows = ops::embedding(Tensor::from_host(backend_, MOE_DTYPE_I32, {wanted}, row_ids.data()), x);
  }
  Tensor normed = ops::rmsnorm(rows, weights_.final_norm, eps);
  return ops::linear(normed, weights_.lm_head);
}

Tensor Transformer::attention(const LayerWeights& w, const Tensor& h, const StepTensors& step, KvCache& cache,
                              size_t layer) const {
  if (config_.arch == Architecture::kDeepseekV3)
    return mla_attention(w.attn, h, step, cache.keys(layer), cache.values(layer));
  return gqa_attention(w.attn, h, step, cache.keys(layer), cache.values(layer));
}

Tensor Transformer::gqa_attention(const AttentionWeights& w, const Tensor& h, const StepTensors& step, Tensor& k_cache,
                                  Tensor& v_cache) const {
  const int64_t t = step.tokens, hd = config_.head_dim;
  Tensor q = ops::linear(h, w.q_proj).view({t, config_.num_heads, hd});
  Tensor k = ops::linear(h, w.k_proj).view({t, config_.num_kv_heads, hd});
  Tensor v = ops::linear(h, w.v_proj).view({t, config_.num_kv_heads, hd});
  const int rot = config_.rope.rot_dim;
  ops::rope(q, step.position, rope_cos_, rope_sin_, 0, rot, config_.rope_layout);
  ops::rope(k, step.position, rope_cos_, rope_sin_, 0, rot, config_.rope_layout);
  ops::kv_store(k, v, step.slot, step.position, k_cache, v_cache);
  Tensor out = Tensor::empty(backend_, MOE_DTYPE_F32, {t, config_.num_heads, hd});
  ops::attention(q, k_cache, v_cache, step.slot, step.kv_len, static_cast<float>(config_.attention_scale), out);
  return out.view({t, config_.num_heads * hd});
}

// Multi-head latent attention in its plain (non-absorbed) form, as transformers computes it:
// q from (low-rank) projections; a compressed kv vector plus one shared rope key per token; per-head
// keys [k_nope | k_rope] and values expanded from the compressed vector by kv_b_proj.
Tensor Transformer::mla_attention(const AttentionWeights& w, const Tensor& h, const StepTensors& step,
                                  Tensor& k_cache, Tensor& v_cache) const {
  const int64_t t = step.tokens, heads = config_.num_heads;
  const int64_t nope = config_.qk_nope_head_dim, rope = config_.qk_rope_head_dim, dk = nope + rope;
  const int64_t dv = config_.v_head_dim, rank = config_.kv_lora_rank;

  Tensor q;
  if (config_.q_lora_rank > 0) {
    Tensor qa = ops::linear(h, w.q_a_proj);
    ops::rmsnorm(qa, w.q_a_norm, kMlaNormEps, qa);
    q = ops::linear(qa, w.q_b_proj);
  } else {
    q = ops::linear(h, w.q_proj);
  }
  q = q.view({t, heads, dk});
  ops::rope(q, step.position, rope_cos_, rope_sin_, static_cast<int>(nope), static_cast<int>(rope),
            config_.rope_layout);

  Tensor compressed = ops::linear(h, w.kv_a_proj);  // [t, rank + rope]
  Tensor latent = Tensor::empty(backend_, MOE_DTYPE_F32, {t, rank});
  ops::copy_columns(latent, 0, compressed, 0, rank);
  ops::rmsnorm(latent, w.kv_a_norm, kMlaNormEps, latent);
  Tensor k_rope = Tensor::empty(backend_, MOE_DTYPE_F32, {t, 1, rope});
  Tensor k_rope_2d = k_rope.view({t, rope});
  ops::copy_columns(k_rope_2d, 0, compressed, rank, rope);
  ops::rope(k_rope, step.position, rope_cos_, rope_sin_, 0, static_cast<int>(rope), config_.rope_layout);

  Tensor kv = ops::linear(latent, w.kv_b_proj).view({t * heads, nope + dv});
  Tensor k = Tensor::empty(backend_, MOE_DTYPE_F32, {t * heads, dk});
  Tensor v = Tensor::empty(backend_, MOE_DTYPE_F32, {t * heads, dv});
  ops::copy_columns(k, 0, kv, 0, nope);
  ops::copy_columns(v, 0, kv, nope, dv);
  Tensor k_rows = k.view({t, heads * dk});
  for (int64_t head = 0; head < heads; ++head) ops::copy_columns(k_rows, head * dk + nope, k_rope_2d, 0, rope);

  ops::kv_store(k.view({t, heads, dk}), v.view({t, heads, dv}), step.slot, step.position, k_cache, v_cache);
  Tensor out = Tensor::empty(backend_, MOE_DTYPE_F32, {t, heads, dv});
  ops::attention(q, k_cache, v_cache, step.slot, step.kv_len, static_cast<float>(config_.attention_scale), out);
  return out.view({t, heads * dv});
}

void Transformer::add_mlp(const MlpWeights& w, const Tensor& h, Tensor& x) const {
  Tensor act = ops::gated_act(ops::linear(h, w.gate_up), config_.activation);
  ops::linear_accumulate(act, w.down, x);
}

void Transformer::add_moe(const MoeWeights& w, const Tensor& h, Tensor& x) const {
  Tensor logits = ops::linear(h, w.router);
  const int k = static_cast<int>(config_.experts_per_token);
  ops::Routing routing =
      config_.arch == Architecture::kDeepseekV3
          ? ops::route_sigmoid_group_topk(logits, w.router_bias.defined() ? &w.router_bias : nullptr,
                                          static_cast<int>(config_.n_group), static_cast<int>(config_.topk_group), k,
                                          config_.norm_topk_prob, static_cast<float>(config_.routed_scaling_factor))
          : ops::route_softmax_topk(logits, k, true);
  ops::Permuted p = ops::moe_permute(h, routing.ids, static_cast<int>(config_.num_experts));
  Tensor y = ops::expert_mlp(p.x_sorted, p.offsets, w.experts_gate_up, w.experts_down, config_.activation);
  ops::moe_unpermute(y, p.source, routing.weights, true, x);
  if (w.shared.gate_up.defined()) add_mlp(w.shared, h, x);
}

}  // namespace moe
