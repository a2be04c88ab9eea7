// A model's hyper-parameters, read from a Hugging Face config.json with the keys transformers reads
// (transformers 5 `rope_parameters` and the older `rope_theta` + `rope_scaling` both accepted).
#pragma once

#include <cstdint>
#include <string>

#include "model/rope_tables.h"

namespace moe {

namespace io {
class ConfigReader;
}

enum class Architecture { kMixtral, kDeepseekV3 };

struct ModelConfig {
  Architecture arch = Architecture::kMixtral;
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  int32_t activation = 0;  // MOE_ACT_*

  // Attention. Mixtral: head_dim for q, k and v. DeepSeek-V3 (MLA): q/k heads are qk_nope + qk_rope
  // wide, v heads v_head_dim; q through a low-rank pair when q_lora_rank > 0.
  int64_t head_dim = 0;
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int32_t rope_layout = 0;  // MOE_ROPE_*
  RopeParameters rope;
  double attention_scale = 0;  // softmax scale of q.k

  // Feed-forward. Layers [0, first_dense_layers) are dense MLPs of width intermediate_size; the rest
  // are MoE layers with num_experts routed experts of width moe_intermediate_size (Mixtral: every
  // layer is MoE, intermediate_size is the expert width).
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_dense_layers = 0;
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;
  int64_t num_shared_experts = 0;
  // DeepSeek-V3 routing
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;

  bool is_moe_layer(int64_t layer) const { return layer >= first_dense_layers; }
  int64_t qk_head_dim() const { return arch == Architecture::kDeepseekV3 ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
  int64_t value_head_dim() const { return arch == Architecture::kDeepseekV3 ? v_head_dim : head_dim; }
};

// Reads and checks config.json; errors name the file and the key.
ModelConfig parse_model_config(const io::ConfigReader& config);

}  // namespace moe
