// Loading ModelWeights from a checkpoint and saving them back, through the weight table.
#pragma once

#include <string>

#include "model/model_config.h"
#include "model/model_weights.h"

namespace moe {

class Backend;
namespace io {
class Checkpoint;
}

struct ParameterCounts {
  int64_t total = 0;   // parameters (buffers such as e_score_correction_bias excluded), as transformers counts
  int64_t active = 0;  // those one token's forward pass uses: routed experts count experts_per_token of num_experts
};

// Loads every weight the config calls for, checking each tensor's shape (errors name the tensor and
// its file); floating weights become `dtype` (f32 or bf16) except the f32-only ones.
ModelWeights load_weights(const io::Checkpoint& checkpoint, const ModelConfig& config, Backend& backend,
                          moe_dtype dtype);

ParameterCounts count_parameters(const ModelConfig& config);

// New weights as transformers initialises them: N(0, stddev) for projections, embeddings and
// routers, 1 for RMSNorm weights, 0 for router biases; drawn from `seed` in table order.
ModelWeights random_weights(const ModelConfig& config, Backend& backend, moe_dtype dtype, uint64_t seed, double stddev);

// Writes the weights as safetensors under the names transformers' save_pretrained uses, in `dtype`
// (f32-only weights stay f32), into `path` atomically.
void save_weights(const ModelWeights& weights, const ModelConfig& config, moe_dtype dtype, const std::string& path);

}  // namespace moe
