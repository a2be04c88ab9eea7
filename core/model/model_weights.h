// The weights of a loaded model, on the backend, in the layout the forward pass wants:
// projections in the nn.Linear layout [out, in]; each MoE layer's experts fused into one
// gate|up tensor [experts, 2F, hidden] and one down tensor [experts, hidden, F] (transformers 5's
// fused layout) whatever layout the checkpoint used; norms, routers and router biases in f32.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace moe {

struct AttentionWeights {
  // Mixtral (GQA)
  Tensor q_proj, k_proj, v_proj;
  // DeepSeek-V3 (MLA); q_proj above is used when q_lora_rank is 0
  Tensor q_a_proj, q_a_norm, q_b_proj;
  Tensor kv_a_proj, kv_a_norm, kv_b_proj;
  Tensor o_proj;
  // Mixtral, inference: [q_proj; k_proj; v_proj] stacked in one block, of which the three are views, so a
  // one-token step makes one product instead of three (Model::fuse_qkv). Undefined once the trainer has
  // the weights (it may replace them).
  Tensor qkv;
};

struct MlpWeights {
  Tensor gate_up;  // [2F, hidden]
  Tensor down;     // [hidden, F]
};

struct MoeWeights {
  Tensor router;           // f32 [experts, hidden]
  Tensor router_bias;      // f32 [experts] (DeepSeek-V3 e_score_correction_bias), may be undefined
  Tensor experts_gate_up;  // [experts, 2F, hidden]
  Tensor experts_down;     // [experts, hidden, F]
  MlpWeights shared;       // shared experts as one MLP (DeepSeek-V3), may be undefined
};

struct LayerWeights {
  Tensor input_norm, post_attention_norm;  // f32 [hidden]
  AttentionWeights attn;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
};

struct ModelWeights {
  Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;    // f32 [hidden]
  Tensor lm_head;       // [vocab, hidden] (the embedding when tied)
};

}  // namespace moe
