// Which checkpoint tensors make up each weight of ModelWeights, under the names transformers 5.17's
// save_pretrained writes, with their shapes. Loading and saving both walk this one table, so the two
// directions cannot disagree.
#pragma once

#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/model_weights.h"

namespace moe {

struct WeightPart {
  std::string name;
  Shape shape;
};

struct WeightEntry {
  Tensor* target = nullptr;
  Shape shape;                           // the tensor in memory
  std::vector<WeightPart> parts;         // checkpoint tensors concatenated along dim 0 into `shape`
  std::string fused_name;                // transformers' fused 3-D expert tensor holding all of `shape`, or ""
  bool keep_f32 = false;                 // norms, routers, router biases: always f32 in memory
  bool is_parameter = true;              // false for buffers (e_score_correction_bias)
  bool routed_experts = false;           // one slice per routed expert: only experts_per_token are active
};

// Every entry for the config; targets point into `weights`, whose layers vector is sized here when
// it does not already hold one element per layer (existing tensors are kept).
std::vector<WeightEntry> weight_table(const ModelConfig& config, ModelWeights& weights);

}  // namespace moe
