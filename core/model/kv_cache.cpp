#include "model/kv_cache.h"

#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace moe {

KvCache::KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity, KvLayout layout)
    : slots_(slots),
      capacity_(capacity),
      layout_(config.arch == Architecture::kDeepseekV3 ? layout : KvLayout::kPerHead) {
  const bool mla = config.arch == Architecture::kDeepseekV3;
  int64_t kv_heads = mla ? config.num_heads : config.num_kv_heads;
  int64_t dk = config.qk_head_dim(), dv = config.value_head_dim();
  if (latent()) {
    kv_heads = 1;
    dk = config.kv_lora_rank + config.qk_rope_head_dim;
    dv = config.kv_lora_rank;
  }
  for (int64_t l = 0; l < config.num_layers; ++l) {
    keys_.push_back(Tensor::empty(backend, MOE_DTYPE_F32, {slots, kv_heads, capacity, dk}));
    values_.push_back(Tensor::empty(backend, MOE_DTYPE_F32, {slots, kv_heads, capacity, dv}));
  }
}

size_t KvCache::nbytes() const {
  size_t bytes = 0;
  for (size_t l = 0; l < keys_.size(); ++l) bytes += keys_[l].nbytes() + values_[l].nbytes();
  return bytes;
}

KvLayout inference_kv_layout(const ModelConfig& config) {
  if (config.arch != Architecture::kDeepseekV3) return KvLayout::kPerHead;
  const char* env = std::getenv("MOE_MLA_CACHE");
  if (!env || !*env || std::strcmp(env, "latent") == 0) return KvLayout::kLatent;
  require(std::strcmp(env, "per_head") == 0, MOE_ERR_INVALID_ARGUMENT,
          std::string("MOE_MLA_CACHE is '") + env + "'; it must be latent (the default) or per_head");
  return KvLayout::kPerHead;
}

}  // namespace moe
