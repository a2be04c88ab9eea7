// Keys and values of every layer for a set of sequence slots: k [slots, kv_heads, capacity, dk] and
// v [slots, kv_heads, capacity, dv] per layer.
//
// DeepSeek-V3 (MLA) has two layouts. kPerHead caches each head's full key and value, as transformers does
// (training runs on it: its backward needs per-head keys). kLatent caches what MLA compresses a token to,
// one vector shared by every head: keys [normalised latent | roped k_rope] (kv_lora_rank +
// qk_rope_head_dim), values the latent (kv_lora_rank). Attention then runs in the latent space with the
// query and output absorbed through kv_b_proj (Transformer::mla_attention_latent); for DeepSeek-V3's own
// sizes the cache is 128 heads x 320 wide per token against 1 x 1088 (about 38x smaller).
#pragma once

#include <vector>

#include "model/model_config.h"
#include "tensor/tensor.h"

namespace moe {

enum class KvLayout { kPerHead, kLatent };

class KvCache {
 public:
  // kLatent applies to MLA models only; other models cache per head whatever is asked.
  KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity,
          KvLayout layout = KvLayout::kPerHead);
  Tensor& keys(size_t layer) { return keys_[layer]; }
  Tensor& values(size_t layer) { return values_[layer]; }
  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }
  bool latent() const { return layout_ == KvLayout::kLatent; }
  size_t nbytes() const;

 private:
  int64_t slots_, capacity_;
  KvLayout layout_;
  std::vector<Tensor> keys_, values_;
};

// The layout inference uses for `config`: kLatent for MLA unless MOE_MLA_CACHE=per_head.
KvLayout inference_kv_layout(const ModelConfig& config);

}  // namespace moe
