#include "model/model_config.h"

#include <cmath>

#include "base/error.h"
#include "io/config_reader.h"
#include "moe/moe_plugin.h"

namespace moe {
namespace {

[[noreturn]] void bad(const io::ConfigReader& c, const std::string& what) {
  fail(MOE_ERR_FORMAT, c.source() + ": " + what);
}

int32_t parse_activation(const io::ConfigReader& c) {
  std::string act = c.get_string_or("hidden_act", "silu");
  if (act == "silu" || act == "swish") return MOE_ACT_SILU;
  if (act == "gelu_pytorch_tanh" || act == "gelu_new") return MOE_ACT_GELU_TANH;
  fail(MOE_ERR_UNSUPPORTED, c.source() + ": hidden_act '" + act + "' is not supported (silu, gelu_pytorch_tanh)");
}

// transformers 5 writes `rope_parameters` (with rope_theta inside); older configs have `rope_theta`
// and an optional `rope_scaling`.
RopeParameters parse_rope(const io::ConfigReader& c, int64_t head_dim, int64_t max_positions) {
  RopeParameters p;
  p.theta = c.get_float_or("rope_theta", 10000.0);
  double partial = c.get_float_or("partial_rotary_factor", 1.0);
  const char* key = !c.is_null("rope_parameters") ? "rope_parameters" : !c.is_null("rope_scaling") ? "rope_scaling" : nullptr;
  if (key) {
    io::ConfigReader r = c.object(key);
    p.type = r.get_string_or("rope_type", r.get_string_or("type", "default"));
    p.theta = r.get_float_or("rope_theta", p.theta);
    partial = r.get_float_or("partial_rotary_factor", partial);
    if (p.type != "default") {
      p.factor = r.get_float_or("factor", 1.0);
      if (!(p.factor > 0)) bad(c, std::string(key) + ".factor must be > 0");
    }
    if (p.type == "yarn") {
      p.original_max_position_embeddings =
          static_cast<double>(r.get_int_or("original_max_position_embeddings", max_positions));
      if (r.is_null("factor"))
        p.factor = static_cast<double>(max_positions) / p.original_max_position_embeddings;
      p.beta_fast = r.get_float_or("beta_fast", 32);
      p.beta_slow = r.get_float_or("beta_slow", 1);
      if (p.beta_fast == 0) p.beta_fast = 32;  // transformers: `.get("beta_fast") or 32`
      if (p.beta_slow == 0) p.beta_slow = 1;
      p.mscale = r.get_float_or("mscale", 0);
      p.mscale_all_dim = r.get_float_or("mscale_all_dim", 0);
      p.attention_factor = r.get_float_or("attention_factor", 0);
      p.truncate = r.get_bool_or("truncate", true);
    }
  }
  if (!(p.theta > 0)) bad(c, "rope_theta must be > 0");
  p.rot_dim = static_cast<int>(static_cast<double>(head_dim) * partial);
  if (p.rot_dim <= 0 || p.rot_dim % 2 || p.rot_dim > head_dim)
    bad(c, "the rotary dimension (head_dim x partial_rotary_factor = " + std::to_string(p.rot_dim) +
               ") must be even and within the head");
  return p;
}

void parse_common(const io::ConfigReader& c, ModelConfig& m) {
  m.vocab_size = c.get_positive_int("vocab_size");
  m.hidden_size = c.get_positive_int("hidden_size");
  m.num_layers = c.get_positive_int("num_hidden_layers");
  m.num_heads = c.get_positive_int("num_attention_heads");
  m.num_kv_heads = c.get_positive_int_or("num_key_value_heads", m.num_heads);
  m.max_position_embeddings = c.get_positive_int("max_position_embeddings");
  m.rms_norm_eps = c.get_float_or("rms_norm_eps", 1e-6);
  m.tie_word_embeddings = c.get_bool_or("tie_word_embeddings", false);
  m.activation = parse_activation(c);
  m.experts_per_token = c.get_positive_int("num_experts_per_tok");
  if (m.num_heads % m.num_kv_heads)
    bad(c, "num_attention_heads (" + std::to_string(m.num_heads) + ") is not a multiple of num_key_value_heads (" +
               std::to_string(m.num_kv_heads) + ")");
  if (m.vocab_size > INT32_MAX) bad(c, "vocab_size does not fit 32-bit token ids");
}

void parse_mixtral(const io::ConfigReader& c, ModelConfig& m) {
  m.arch = Architecture::kMixtral;
  m.head_dim = c.get_positive_int_or("head_dim", m.hidden_size / m.num_heads);
  if (c.is_null("head_dim") && m.hidden_size % m.num_heads)
    bad(c, "hidden_size is not a multiple of num_attention_heads and head_dim is not given");
  m.num_experts = c.get_positive_int("num_local_experts");
  m.intermediate_size = c.get_positive_int("intermediate_size");
  m.moe_intermediate_size = m.intermediate_size;
  m.first_dense_layers = 0;
  m.rope_layout = MOE_ROPE_NEOX;
  m.rope = parse_rope(c, m.head_dim, m.max_position_embeddings);
  m.attention_scale = 1.0 / std::sqrt(static_cast<double>(m.head_dim));
}

void parse_deepseek_v3(const io::ConfigReader& c, ModelConfig& m) {
  m.arch = Architecture::kDeepseekV3;
  m.q_lora_rank = c.is_null("q_lora_rank") ? 0 : c.get_positive_int("q_lora_rank");
  m.kv_lora_rank = c.get_positive_int("kv_lora_rank");
  m.qk_nope_head_dim = c.get_positive_int("qk_nope_head_dim");
  m.qk_rope_head_dim = c.get_positive_int("qk_rope_head_dim");
  m.v_head_dim = c.get_positive_int("v_head_dim");
  // MLA expands keys and values for every query head; the kv head count of the config is unused.
  m.num_kv_heads = m.num_heads;
  m.intermediate_size = c.get_positive_int("intermediate_size");
  m.moe_intermediate_size = c.get_positive_int("moe_intermediate_size");
  m.num_experts = c.has("n_routed_experts") ? c.get_positive_int("n_routed_experts") : c.get_positive_int("num_local_experts");
  m.num_shared_experts = c.get_non_negative_int_or("n_shared_experts", 0);
  m.first_dense_layers = c.get_non_negative_int_or("first_k_dense_replace", 0);
  m.n_group = c.get_positive_int_or("n_group", 1);
  m.topk_group = c.get_positive_int_or("topk_group", 1);
  m.norm_topk_prob = c.get_bool_or("norm_topk_prob", true);
  m.routed_scaling_factor = c.get_float_or("routed_scaling_factor", 1.0);
  if (c.get_bool_or("attention_bias", false)) fail(MOE_ERR_UNSUPPORTED, c.source() + ": attention_bias true is not supported");
  std::string topk_method = c.get_string_or("topk_method", "noaux_tc");
  if (topk_method != "noaux_tc")
    fail(MOE_ERR_UNSUPPORTED, c.source() + ": topk_method '" + topk_method + "' is not supported (noaux_tc)");
  std::string scoring = c.get_string_or("scoring_func", "sigmoid");
  if (scoring != "sigmoid")
    fail(MOE_ERR_UNSUPPORTED, c.source() + ": scoring_func '" + scoring + "' is not supported (sigmoid)");
  if (m.num_experts % m.n_group)
    bad(c, "n_routed_experts (" + std::to_string(m.num_experts) + ") is not a multiple of n_group (" +
               std::to_string(m.n_group) + ")");
  if (m.topk_group > m.n_group) bad(c, "topk_group is larger than n_group");
  if (m.experts_per_token > m.topk_group * (m.num_experts / m.n_group))
    bad(c, "num_experts_per_tok is larger than the experts in topk_group groups");
  m.rope_layout = c.get_bool_or("rope_interleave", true) ? MOE_ROPE_INTERLEAVED : MOE_ROPE_NEOX;
  m.rope = parse_rope(c, m.qk_rope_head_dim, m.max_position_embeddings);
  m.rope.rot_dim = static_cast<int>(m.qk_rope_head_dim);  // DeepSeek rotates exactly the rope part of a head
  double scale = 1.0 / std::sqrt(static_cast<double>(m.qk_nope_head_dim + m.qk_rope_head_dim));
  if (m.rope.type != "default" && m.rope.mscale_all_dim != 0) {
    double ms = yarn_mscale(m.rope.factor, m.rope.mscale_all_dim);
    scale *= ms * ms;
  }
  m.attention_scale = scale;
}

}  // namespace

ModelConfig parse_model_config(const io::ConfigReader& c) {
  ModelConfig m;
  m.model_type = c.get_string("model_type");
  if (m.model_type != "mixtral" && m.model_type != "deepseek_v3")
    fail(MOE_ERR_UNSUPPORTED, c.source() + ": model_type '" + m.model_type +
                                  "' is not supported (supported: mixtral, deepseek_v3)");
  parse_common(c, m);
  if (m.model_type == "mixtral")
    parse_mixtral(c, m);
  else
    parse_deepseek_v3(c, m);
  if (m.experts_per_token > m.num_experts)
    bad(c, "num_experts_per_tok (" + std::to_string(m.experts_per_token) + ") exceeds the number of experts (" +
               std::to_string(m.num_experts) + ")");
  return m;
}

}  // namespace moe
