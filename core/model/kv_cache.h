// Keys and values of every layer for a set of sequence slots: k [slots, kv_heads, capacity, dk] and
// v [slots, kv_heads, capacity, dv] per layer (MLA caches full per-head keys and values).
#pragma once

#include <vector>

#include "model/model_config.h"
#include "tensor/tensor.h"

namespace moe {

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, int64_t slots, int64_t capacity);
  Tensor& keys(size_t layer) { return keys_[layer]; }
  Tensor& values(size_t layer) { return values_[layer]; }
  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }

 private:
  int64_t slots_, capacity_;
  std::vector<Tensor> keys_, values_;
};

}  // namespace moe
