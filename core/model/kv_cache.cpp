#include "model/kv_cache.h"

namespace moe {

KvCache::KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity)
    : slots_(slots), capacity_(capacity) {
  const int64_t kv_heads = config.arch == Architecture::kDeepseekV3 ? config.num_heads : config.num_kv_heads;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    keys_.push_back(Tensor::empty(backend, MOE_DTYPE_F32, {slots, kv_heads, capacity, config.qk_head_dim()}));
    values_.push_back(Tensor::empty(backend, MOE_DTYPE_F32, {slots, kv_heads, capacity, config.value_head_dim()}));
  }
}

}  // namespace moe
