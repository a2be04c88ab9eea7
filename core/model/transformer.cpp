#include "model/transformer.h"

#include "base/error.h"
#include "tensor/backend.h"
#include "tensor/ops.h"

namespace moe {

// One call's index tensors and training context.
struct Transformer::Step {
  int64_t tokens = 0;
  bool latent_cache = false;  // MLA attends over the compressed cache (KvCache::latent)
  ad::AttentionStep attn;
  ad::Tape* tape = nullptr;
  TrainingPass* train = nullptr;
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
  std::vector<float> sin_neg(tables.sin.size());
  for (size_t i = 0; i < sin_neg.size(); ++i) sin_neg[i] = -tables.sin[i];
  rope_.cos = Tensor::from_host(backend, MOE_DTYPE_F32, shape, tables.cos.data(), Lifetime::kPersistent);
  rope_.sin = Tensor::from_host(backend, MOE_DTYPE_F32, shape, tables.sin.data(), Lifetime::kPersistent);
  rope_.sin_neg = Tensor::from_host(backend, MOE_DTYPE_F32, shape, sin_neg.data(), Lifetime::kPersistent);
}

ad::Var Transformer::weight(const Tensor& w, const Step& s) const {
  if (!s.train) return ad::constant(w);
  auto it = s.train->grads.find(w.data());
  return it == s.train->grads.end() ? ad::constant(w) : ad::parameter(w, it->second);
}

ad::Var Transformer::adapted_weight(const Tensor& w, const Step& s) const {
  if (s.train) {
    auto it = s.train->lora.find(w.data());
    if (it != s.train->lora.end()) {
      const LoraAdapter& lora = it->second;
      return ad::lora_weight(s.tape, weight(w, s), lora.a, lora.b, lora.scale);
    }
  }
  return weight(w, s);
}

ad::Var Transformer::project(const ad::Var& x, const Tensor& w, const Step& s) const {
  ad::Var y = ad::linear(s.tape, x, weight(w, s));
  if (s.train) {
    auto it = s.train->lora.find(w.data());
    if (it != s.train->lora.end()) {
      const LoraAdapter& lora = it->second;
      ad::Var low = ad::linear(s.tape, x, lora.a);
      y = ad::add(s.tape, y, ad::scaled(s.tape, ad::linear(s.tape, low, lora.b), lora.scale));
    }
  }
  return y;
}

ad::Var Transformer::project_residual(const ad::Var& x, const Tensor& w, const ad::Var& residual, const Step& s) const {
  if (s.train && s.train->lora.count(w.data())) return ad::add(s.tape, residual, project(x, w, s));
  return ad::linear_residual(s.tape, x, weight(w, s), residual);
}

DeviceTokens DeviceTokens::allocate(Backend& backend, int64_t tokens, Lifetime lifetime) {
  DeviceTokens t;
  t.block = Tensor::empty(backend, MOE_DTYPE_I32, {4, tokens}, lifetime);
  t.ids = t.block.slice(0, 1).view({tokens});
  t.slot = t.block.slice(1, 2).view({tokens});
  t.position = t.block.slice(2, 3).view({tokens});
  t.kv_len = t.block.slice(3, 4).view({tokens});
  return t;
}

void DeviceTokens::fill(const TokenBatch& batch) {
  const size_t n = batch.ids.size();
  require(static_cast<int64_t>(n) == ids.numel() && batch.slot.size() == n && batch.position.size() == n,
          MOE_ERR_INTERNAL, "DeviceTokens::fill: the batch does not match the inputs' size");
  std::vector<int32_t> host(4 * n);
  for (size_t t = 0; t < n; ++t) {
    host[t] = batch.ids[t];
    host[n + t] = batch.slot[t];
    host[2 * n + t] = batch.position[t];
    host[3 * n + t] = batch.position[t] + 1;
  }
  block.copy_from_host(host.data(), host.size() * sizeof(int32_t));
}

Tensor Transformer::forward(const TokenBatch& batch, KvCache& cache, TrainingPass* train) const {
  DeviceTokens tokens = DeviceTokens::allocate(backend_, static_cast<int64_t>(batch.ids.size()));
  tokens.fill(batch);
  Step s;
  s.train = train;
  s.tape = train ? train->tape : nullptr;
  ad::Var logits = logits_of(run_layers(tokens, &batch.logit_rows, cache, train), s);
  if (train) train->logits = logits;
  return logits.value;
}

Tensor Transformer::forward_all_rows(const DeviceTokens& tokens, KvCache& cache) const {
  return logits_of(run_layers(tokens, nullptr, cache, nullptr), Step{}).value;
}

ad::Var Transformer::hidden_states(const TokenBatch& batch, KvCache& cache, TrainingPass* train) const {
  DeviceTokens tokens = DeviceTokens::allocate(backend_, static_cast<int64_t>(batch.ids.size()));
  tokens.fill(batch);
  Step s;
  s.train = train;
  s.tape = train ? train->tape : nullptr;
  return final_norm(run_layers(tokens, &batch.logit_rows, cache, train), s);
}

ad::Var Transformer::NormedInput::normed(ad::Tape* tape) const { return ad::rmsnorm(tape, x, weight, eps); }

ad::Var Transformer::final_norm(const ad::Var& x, const Step& s) const {
  return ad::rmsnorm(s.tape, x, weight(weights_.final_norm, s), static_cast<float>(config_.rms_norm_eps));
}

ad::Var Transformer::logits_of(const ad::Var& x, const Step& s) const {
  // Inference: the final norm and the LM head as one op.
  if (!s.train)
    return ad::constant(ops::rmsnorm_linear(x.value, weights_.final_norm, static_cast<float>(config_.rms_norm_eps),
                                            weights_.lm_head));
  return project(final_norm(x, s), weights_.lm_head, s);
}

ad::Var Transformer::run_layers(const DeviceTokens& tokens, const std::vector<int64_t>* logit_rows, KvCache& cache,
                                TrainingPass* train) const {
  Step s;
  s.tokens = tokens.ids.numel();
  s.train = train;
  s.tape = train ? train->tape : nullptr;
  s.attn.slot = tokens.slot;
  s.attn.position = tokens.position;
  s.attn.kv_len = tokens.kv_len;
  s.attn.scale = static_cast<float>(config_.attention_scale);
  s.latent_cache = cache.latent();
  require(!(train && s.latent_cache), MOE_ERR_INTERNAL, "training runs on a per-head KV cache, not a latent one");
  const Tensor& ids = tokens.ids;

  ad::Var x = ad::embedding(s.tape, ids, weight(weights_.embed_tokens, s));
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const LayerWeights& w = weights_.layers[l];
    const NormedInput attn_in{x, weight(w.input_norm, s), eps};
    ad::Var attn = config_.arch == Architecture::kDeepseekV3
                       ? mla_attention(w.attn, attn_in.normed(s.tape), s, cache.keys(l), cache.values(l))
                       : gqa_attention(w.attn, attn_in, s, cache.keys(l), cache.values(l));
    x = project_residual(attn, w.attn.o_proj, x, s);
    const NormedInput ffn_in{x, weight(w.post_attention_norm, s), eps};
    x = config_.is_moe_layer(static_cast<int64_t>(l)) ? add_moe(w.moe, ffn_in, l, s)
                                                       : add_mlp(w.mlp, ffn_in.normed(s.tape), x, s);
  }

  // Only the rows asked for go on to the final norm and the LM head.
  const int64_t wanted = logit_rows ? static_cast<int64_t>(logit_rows->size()) : s.tokens;
  bool all_rows = wanted == s.tokens;
  for (int64_t i = 0; logit_rows && all_rows && i < wanted; ++i) all_rows = (*logit_rows)[i] == i;
  if (!all_rows) {
    std::vector<int32_t> rows(logit_rows->begin(), logit_rows->end());
    x = ad::gather_rows(s.tape, x, Tensor::from_host(backend_, MOE_DTYPE_I32, {wanted}, rows.data()));
  }
  return x;
}

ad::Var Transformer::gqa_attention(const AttentionWeights& w, const NormedInput& in, const Step& s, Tensor& k_cache,
                                   Tensor& v_cache) const {
  const int64_t t = s.tokens, hd = config_.head_dim;
  const int rot = config_.rope.rot_dim, layout = config_.rope_layout;
  if (!s.train && t == 1 && w.qkv.defined()) {
    // One token: the norm and one product against the stacked [q; k; v] weights as one op; its output row
    // [q heads | k heads | v heads] is contiguous, so q, k and v are views; then the rotation of q and k
    // with the store of k and v as one op, and the attention.
    const int64_t heads = config_.num_heads, kv_heads = config_.num_kv_heads;
    Tensor qkv = ops::rmsnorm_linear(in.x.value, in.weight.value, in.eps, w.qkv).view({heads + 2 * kv_heads, hd});
    Tensor q = qkv.slice(0, heads).view({1, heads, hd});
    Tensor k = qkv.slice(heads, heads + kv_heads).view({1, kv_heads, hd});
    const Tensor v = qkv.slice(heads + kv_heads, heads + 2 * kv_heads).view({1, kv_heads, hd});
    const ops::RopeSpec spec{&rope_.cos, &rope_.sin, 0, rot, layout};
    ops::rope_kv_store(q, k, v, s.attn.position, spec, s.attn.slot, k_cache, v_cache);
    Tensor out = Tensor::empty(backend_, MOE_DTYPE_F32, {1, heads, v_cache.dim(3)});
    ops::attention(q, k_cache, v_cache, s.attn.slot, s.attn.kv_len, s.attn.scale, out);
    return ad::constant(out.view({t, heads * v_cache.dim(3)}));
  }
  const ad::Var h = in.normed(s.tape);
  ad::Var q = ad::reshape(project(h, w.q_proj, s), {t, config_.num_heads, hd});
  ad::Var k = ad::reshape(project(h, w.k_proj, s), {t, config_.num_kv_heads, hd});
  ad::Var v = ad::reshape(project(h, w.v_proj, s), {t, config_.num_kv_heads, hd});
  q = ad::rope(s.tape, q, s.attn.position, rope_, 0, rot, layout);
  k = ad::rope(s.tape, k, s.attn.position, rope_, 0, rot, layout);
  ad::Var out = ad::attention(s.tape, q, k, v, s.attn, k_cache, v_cache);
  return ad::reshape(out, {t, config_.num_heads * hd});
}

// Multi-head latent attention in its plain (non-absorbed) form, as transformers computes it:
// q from (low-rank) projections; a compressed kv vector plus one shared rope key per token; per-head
// keys [k_nope | k_rope] and values expanded from the compressed vector by kv_b_proj.
ad::Var Transformer::mla_attention(const AttentionWeights& w, const ad::Var& h, const Step& s, Tensor& k_cache,
                                   Tensor& v_cache) const {
  const int64_t t = s.tokens, heads = config_.num_heads;
  const int64_t nope = config_.qk_nope_head_dim, rope = config_.qk_rope_head_dim, dk = nope + rope;
  const int64_t dv = config_.v_head_dim, rank = config_.kv_lora_rank;
  const int layout = config_.rope_layout;
  if (s.latent_cache) return ad::constant(mla_attention_latent(w, h.value, s, k_cache, v_cache));

  ad::Var q = config_.q_lora_rank > 0
                  ? project(ad::rmsnorm(s.tape, project(h, w.q_a_proj, s), weight(w.q_a_norm, s), kMlaNormEps),
                            w.q_b_proj, s)
                  : project(h, w.q_proj, s);
  q = ad::rope(s.tape, ad::reshape(q, {t, heads, dk}), s.attn.position, rope_, static_cast<int>(nope),
               static_cast<int>(rope), layout);

  ad::Var compressed = project(h, w.kv_a_proj, s);  // [t, rank + rope]
  ad::Var latent = ad::rmsnorm(s.tape, ad::columns(s.tape, compressed, 0, rank), weight(w.kv_a_norm, s), kMlaNormEps);
  ad::Var k_rope = ad::rope(s.tape, ad::reshape(ad::columns(s.tape, compressed, rank, rope), {t, 1, rope}),
                            s.attn.position, rope_, 0, static_cast<int>(rope), layout);

  ad::Var kv = ad::reshape(project(latent, w.kv_b_proj, s), {t * heads, nope + dv});
  ad::Var v = ad::reshape(ad::columns(s.tape, kv, nope, dv), {t, heads, dv});
  // Keys: [k_nope | k_rope] per head, the rope part shared by every head.
  ad::Var k = ad::concat_heads(s.tape, ad::reshape(ad::columns(s.tape, kv, 0, nope), {t, heads, nope}),
                               ad::reshape(k_rope, {t, rope}));
  ad::Var out = ad::attention(s.tape, q, k, v, s.attn, k_cache, v_cache);
  return ad::reshape(out, {t, heads * dv});
}

// MLA over the compressed cache (inference). With W_UK[h] [nope, rank] and W_UV[h] [dv, rank] head h's
// slices of kv_b_proj, head h's score against token j is
//   q_nope . (W_UK[h] latent_j) + q_rope . k_rope_j = [q_nope W_UK[h] | q_rope] . [latent_j | k_rope_j]
// and its output is W_UV[h] (sum_j p_j latent_j). So the query is absorbed into the latent space, every
// head attends over the one cached [latent | k_rope] vector per token (kv_heads 1, values the latent),
// and the attended latent is expanded per head afterwards: the same numbers as the per-head form, with a
// cache of rank + rope floats per token instead of heads x (nope + rope + dv).
Tensor Transformer::mla_attention_latent(const AttentionWeights& w, const Tensor& h, const Step& s, Tensor& k_cache,
                                         Tensor& v_cache) const {
  const int64_t t = s.tokens, heads = config_.num_heads;
  const int64_t nope = config_.qk_nope_head_dim, rope = config_.qk_rope_head_dim, dk = nope + rope;
  const int64_t dv = config_.v_head_dim, rank = config_.kv_lora_rank, latent_k = rank + rope;
  const int layout = config_.rope_layout;

  Tensor q = config_.q_lora_rank > 0
                 ? ops::linear(ops::rmsnorm(ops::linear(h, w.q_a_proj), w.q_a_norm, kMlaNormEps), w.q_b_proj)
                 : ops::linear(h, w.q_proj);
  q = q.view({t, heads, dk});
  ops::rope(q, s.attn.position, rope_.cos, rope_.sin, static_cast<int>(nope), static_cast<int>(rope), layout);

  // The token's cache entry: key [latent | k_rope], value latent.
  Tensor compressed = ops::linear(h, w.kv_a_proj);  // [t, rank + rope]
  Tensor key = Tensor::empty(backend_, MOE_DTYPE_F32, {t, latent_k});
  Tensor raw_latent = Tensor::empty(backend_, MOE_DTYPE_F32, {t, rank});
  ops::copy_columns(raw_latent, 0, compressed, 0, rank);
  Tensor latent = ops::rmsnorm(raw_latent, w.kv_a_norm, kMlaNormEps);
  ops::copy_columns(key, 0, latent, 0, rank);
  ops::copy_columns(key, rank, compressed, rank, rope);
  Tensor key_heads = key.view({t, 1, latent_k});
  // The rope part rotates in place inside the key (rot_offset = rank).
  ops::rope(key_heads, s.attn.position, rope_.cos, rope_.sin, static_cast<int>(rank), static_cast<int>(rope), layout);
  ops::kv_store(key_heads, latent.view({t, 1, rank}), s.attn.slot, s.attn.position, k_cache, v_cache);

  // Absorbed query [t, heads, rank + rope]: q_nope W_UK[h] for the latent part, q_rope as it is.
  const Tensor& kv_b = w.kv_b_proj;  // [heads * (nope + dv), rank]
  Tensor q_latent = Tensor::empty(backend_, MOE_DTYPE_F32, {t, heads, latent_k});
  ops::gemm_per_head(heads, t, rank, nope, {&q, 0, dk, heads * dk}, {&kv_b, 0, (nope + dv) * rank, rank},
                     /*trans_b=*/false, {&q_latent, 0, latent_k, heads * latent_k});
  Tensor q_rows = q.view({t * heads, dk}), q_latent_rows = q_latent.view({t * heads, latent_k});
  ops::copy_columns(q_latent_rows, rank, q_rows, nope, rope);

  Tensor attended = Tensor::empty(backend_, MOE_DTYPE_F32, {t, heads, rank});
  ops::attention(q_latent, k_cache, v_cache, s.attn.slot, s.attn.kv_len, s.attn.scale, attended);

  // Each head's output: W_UV[h] . attended latent.
  Tensor out = Tensor::empty(backend_, MOE_DTYPE_F32, {t, heads * dv});
  ops::gemm_per_head(heads, t, dv, rank, {&attended, 0, rank, heads * rank}, {&kv_b, nope * rank, (nope + dv) * rank, rank},
                     /*trans_b=*/true, {&out, 0, dv, heads * dv});
  return out;
}

ad::Var Transformer::add_mlp(const MlpWeights& w, const ad::Var& h, const ad::Var& x, const Step& s) const {
  ad::Var act = ad::gated_act(s.tape, project(h, w.gate_up, s), config_.activation);
  return project_residual(act, w.down, x, s);
}

ad::Var Transformer::add_moe(const MoeWeights& w, const NormedInput& in, size_t layer, const Step& s) const {
  const ad::Var& x = in.x;
  ad::MoeRouting r;
  r.sigmoid = config_.arch == Architecture::kDeepseekV3;
  r.top_k = static_cast<int>(config_.experts_per_token);
  r.n_group = static_cast<int>(config_.n_group);
  r.topk_group = static_cast<int>(config_.topk_group);
  r.normalize = r.sigmoid ? config_.norm_topk_prob : true;
  r.scaling = static_cast<float>(config_.routed_scaling_factor);
  r.num_experts = static_cast<int>(config_.num_experts);
  r.activation = config_.activation;
  if (s.train && s.train->gumbel) {
    r.gumbel = true;
    r.temperature = s.train->temperature;
    r.noise_seed = s.train->noise_seed;
    // Each layer draws from its own stretch of the noise stream.
    r.noise_offset = static_cast<uint64_t>(layer) * static_cast<uint64_t>(s.tokens) * r.num_experts;
  }
  if (s.train) r.capacity_factor = s.train->capacity_factor;
  const Tensor* bias = w.router_bias.defined() ? &w.router_bias : nullptr;
  if (!s.train && !w.shared.gate_up.defined()) {
    // Inference without shared experts: nothing else reads the normed rows, so the router's op applies the
    // norm itself.
    const ops::InputNorm norm{&in.weight.value, in.eps};
    return ad::constant(
        ad::routed_experts_inference(x.value, norm, w.router, bias, w.experts_gate_up, w.experts_down, r, x.value));
  }
  const ad::Var h = in.normed(s.tape);
  // Routed experts under LoRA run on their adapted weights W + scale * B A, built for this pass.
  ad::MoeOutput out = ad::routed_experts(s.tape, h, weight(w.router, s), bias, adapted_weight(w.experts_gate_up, s),
                                         adapted_weight(w.experts_down, s), r, x);
  if (s.train) {
    s.train->router_logits.push_back(out.router_logits);
    s.train->expert_ids.push_back(out.ids);
    s.train->dropped.push_back(out.dropped);
  }
  ad::Var y = out.y;
  if (w.shared.gate_up.defined()) y = add_mlp(w.shared, h, y, s);
  return y;
}

}  // namespace moe
