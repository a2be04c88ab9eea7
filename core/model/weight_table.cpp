#include "model/weight_table.h"

namespace moe {
namespace {

std::string layer(int64_t l) { return "model.layers." + std::to_string(l) + "."; }

void add(std::vector<WeightEntry>& t, Tensor* target, Shape shape, std::vector<WeightPart> parts, bool keep_f32 = false) {
  WeightEntry e;
  e.target = target;
  e.shape = std::move(shape);
  e.parts = std::move(parts);
  e.keep_f32 = keep_f32;
  t.push_back(std::move(e));
}

// A gated MLP: gate_proj and up_proj rows stacked into gate_up [2F, D].
void add_mlp(std::vector<WeightEntry>& t, MlpWeights& w, const std::string& p, const char* gate, const char* up,
             const char* down, int64_t f, int64_t d) {
  add(t, &w.gate_up, {2 * f, d}, {{p + gate + ".weight", {f, d}}, {p + up + ".weight", {f, d}}});
  add(t, &w.down, {d, f}, {{p + down + ".weight", {d, f}}});
}

// Routed experts: per-expert tensors stacked (w1/w3 or gate_proj/up_proj interleaved per expert),
// or transformers' fused `experts.gate_up_proj` / `experts.down_proj`.
void add_experts(std::vector<WeightEntry>& t, MoeWeights& w, const std::string& per_expert_prefix,
                 const std::string& fused_prefix, const char* gate, const char* up, const char* down, int64_t e,
                 int64_t f, int64_t d) {
  WeightEntry gu, dn;
  gu.target = &w.experts_gate_up;
  gu.shape = {e, 2 * f, d};
  dn.target = &w.experts_down;
  dn.shape = {e, d, f};
  for (int64_t i = 0; i < e; ++i) {
    std::string p = per_expert_prefix + std::to_string(i) + ".";
    gu.parts.push_back({p + gate + ".weight", {f, d}});
    gu.parts.push_back({p + up + ".weight", {f, d}});
    dn.parts.push_back({p + down + ".weight", {d, f}});
  }
  gu.fused_name = fused_prefix + "gate_up_proj";
  dn.fused_name = fused_prefix + "down_proj";
  gu.routed_experts = dn.routed_experts = true;
  t.push_back(std::move(gu));
  t.push_back(std::move(dn));
}

}  // namespace

std::vector<WeightEntry> weight_table(const ModelConfig& c, ModelWeights& w) {
  std::vector<WeightEntry> t;
  const int64_t d = c.hidden_size, v = c.vocab_size, e = c.num_experts;
  if (w.layers.size() != static_cast<size_t>(c.num_layers)) w.layers.assign(static_cast<size_t>(c.num_layers), LayerWeights{});
  add(t, &w.embed_tokens, {v, d}, {{"model.embed_tokens.weight", {v, d}}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = layer(l);
    add(t, &lw.input_norm, {d}, {{p + "input_layernorm.weight", {d}}}, true);
    add(t, &lw.post_attention_norm, {d}, {{p + "post_attention_layernorm.weight", {d}}}, true);
    const std::string a = p + "self_attn.";
    AttentionWeights& aw = lw.attn;
    if (c.arch == Architecture::kMixtral) {
      const int64_t hd = c.head_dim, q = c.num_heads * hd, kv = c.num_kv_heads * hd;
      add(t, &aw.q_proj, {q, d}, {{a + "q_proj.weight", {q, d}}});
      add(t, &aw.k_proj, {kv, d}, {{a + "k_proj.weight", {kv, d}}});
      add(t, &aw.v_proj, {kv, d}, {{a + "v_proj.weight", {kv, d}}});
      add(t, &aw.o_proj, {d, q}, {{a + "o_proj.weight", {d, q}}});
      MoeWeights& m = lw.moe;
      add(t, &m.router, {e, d}, {{p + "block_sparse_moe.gate.weight", {e, d}}}, true);
      t.back().fused_name = p + "mlp.gate.weight";  // transformers' renamed router, same shape
      add_experts(t, m, p + "block_sparse_moe.experts.", p + "mlp.experts.", "w1", "w3", "w2", e,
                  c.moe_intermediate_size, d);
    } else {
      const int64_t h = c.num_heads, dk = c.qk_head_dim(), dv = c.v_head_dim, rank = c.kv_lora_rank;
      const int64_t rope = c.qk_rope_head_dim, nope = c.qk_nope_head_dim;
      if (c.q_lora_rank > 0) {
        const int64_t qr = c.q_lora_rank;
        add(t, &aw.q_a_proj, {qr, d}, {{a + "q_a_proj.weight", {qr, d}}});
        add(t, &aw.q_a_norm, {qr}, {{a + "q_a_layernorm.weight", {qr}}}, true);
        add(t, &aw.q_b_proj, {h * dk, qr}, {{a + "q_b_proj.weight", {h * dk, qr}}});
      } else {
        add(t, &aw.q_proj, {h * dk, d}, {{a + "q_proj.weight", {h * dk, d}}});
      }
      add(t, &aw.kv_a_proj, {rank + rope, d}, {{a + "kv_a_proj_with_mqa.weight", {rank + rope, d}}});
      add(t, &aw.kv_a_norm, {rank}, {{a + "kv_a_layernorm.weight", {rank}}}, true);
      add(t, &aw.kv_b_proj, {h * (nope + dv), rank}, {{a + "kv_b_proj.weight", {h * (nope + dv), rank}}});
      add(t, &aw.o_proj, {d, h * dv}, {{a + "o_proj.weight", {d, h * dv}}});
      const std::string m = p + "mlp.";
      if (!c.is_moe_layer(l)) {
        add_mlp(t, lw.mlp, m, "gate_proj", "up_proj", "down_proj", c.intermediate_size, d);
      } else {
        MoeWeights& mw = lw.moe;
        add(t, &mw.router, {e, d}, {{m + "gate.weight", {e, d}}}, true);
        add(t, &mw.router_bias, {e}, {{m + "gate.e_score_correction_bias", {e}}}, true);
        t.back().is_parameter = false;
        add_experts(t, mw, m + "experts.", m + "experts.", "gate_proj", "up_proj", "down_proj", e,
                    c.moe_intermediate_size, d);
        if (c.num_shared_experts > 0)
          add_mlp(t, mw.shared, m + "shared_experts.", "gate_proj", "up_proj", "down_proj",
                  c.moe_intermediate_size * c.num_shared_experts, d);
      }
    }
  }
  add(t, &w.final_norm, {d}, {{"model.norm.weight", {d}}}, true);
  if (!c.tie_word_embeddings) add(t, &w.lm_head, {v, d}, {{"lm_head.weight", {v, d}}});
  return t;
}

}  // namespace moe
