// Differentiable functions over backend ops. Each computes its value with the op table and, when
// `tape` is recording and an input needs a gradient, records the backward step. With tape == nullptr
// they are plain inference calls (no closures, no retained activations).
#pragma once

#include "tensor/ops.h"
#include "train/autograd.h"

namespace moe::ad {

// y = x . w^T (x [rows, in], w [out, in]).
Var linear(Tape* tape, const Var& x, const Var& w);
// y = a + b (same element count; y takes a's shape).
Var add(Tape* tape, const Var& a, const Var& b);
// y = x . w^T + residual, fused as one gemm with beta = 1; when nothing is recorded the sum is
// written into residual's own tensor and returned.
Var linear_residual(Tape* tape, const Var& x, const Var& w, const Var& residual);
Var rmsnorm(Tape* tape, const Var& x, const Var& w, float eps);
Var gated_act(Tape* tape, const Var& gate_up, int activation);
Var embedding(Tape* tape, const Tensor& ids, const Var& table);
// Rows `rows` (i32) of x [n, d].
Var gather_rows(Tape* tape, const Var& x, const Tensor& rows);
// x [t, heads, d] rotated; `sin_neg` is -sin (the inverse rotation, used by the backward pass).
// When nothing is recorded x is rotated in place and returned.
struct RopeTables {
  Tensor cos, sin, sin_neg;
};
Var rope(Tape* tape, const Var& x, const Tensor& positions, const RopeTables& tables, int rot_offset, int rot_dim,
         int layout);
// Columns [col, col + cols) of a 2-D x, as a new [rows, cols] tensor.
Var columns(Tape* tape, const Var& x, int64_t col, int64_t cols);
// y = alpha * x.
Var scaled(Tape* tape, const Var& x, float alpha);
// [t, heads, n] and a per-token part [t, r] shared by every head -> [t, heads, n + r] (MLA keys).
Var concat_heads(Tape* tape, const Var& per_head, const Var& shared);
// A weight with its LoRA adapter added: w + scale * b . a, as a new f32 tensor, for a weight w
// [out, in] (a [rank, in], b [out, rank]) or a stack of them, one per routed expert (w [experts, out,
// in], a [experts, rank, in], b [experts, out, rank]). w may be bf16. The gradient dW' that reaches
// the result becomes da = scale * b^T dW' and db = scale * dW' a^T (and dW' itself for a trained w).
Var lora_weight(Tape* tape, const Var& w, const Var& a, const Var& b, float scale);
// A view of x with another shape (the gradient is viewed back).
Var reshape(const Var& x, Shape shape);

// Attention of a step: stores k, v into the caches, then attends q over them.
struct AttentionStep {
  Tensor slot, position, kv_len;  // i32 [tokens]
  float scale = 1.f;
};
Var attention(Tape* tape, const Var& q, const Var& k, const Var& v, const AttentionStep& step, Tensor& k_cache,
              Tensor& v_cache);

// The routed experts of one MoE layer for hidden states h [tokens, dim]: route, group by expert,
// every expert's gated MLP, weighted sum back per token, added to `residual` (in place when nothing
// is recorded). Also returns the router's logits (for auxiliary losses) and the chosen experts.
struct MoeRouting {
  bool sigmoid = false;  // DeepSeek-V3 routing, else softmax top-k
  int top_k = 2;
  int n_group = 1, topk_group = 1;
  bool normalize = true;
  float scaling = 1.f;
  int num_experts = 0;
  int activation = 0;
  // Training-time gating: Gumbel noise on the logits before selection, and its temperature.
  bool gumbel = false;
  float temperature = 1.f;
  uint64_t noise_seed = 0, noise_offset = 0;
  // Capacity (Switch Transformer): > 0 lets each expert keep at most ceil(capacity_factor * tokens *
  // top_k / num_experts) assignments, taken in token order; a later assignment is dropped: its weight
  // is zero, so it adds nothing to the token (which keeps its residual and its other experts) and
  // sends no gradient to the router through that assignment. 0: dropless.
  float capacity_factor = 0.f;
};
struct MoeOutput {
  Var y;
  Var router_logits;
  Tensor ids;           // i32 [tokens, top_k], the chosen experts (dropped assignments included)
  int64_t dropped = 0;  // assignments dropped for capacity
};
// The per-expert capacity for `tokens` tokens: ceil(capacity_factor * tokens * top_k / num_experts).
int64_t expert_capacity(float capacity_factor, int64_t tokens, int top_k, int num_experts);
// The inference path of routed_experts (no autograd, noise or capacity) on the layer's input x: h = x, or
// rmsnorm(x) where `norm` has a weight (applied by ops::route_and_permute); returns residual plus the
// experts' weighted outputs (in residual's storage, as routed_experts' y); the router's logits and the
// chosen experts where asked for.
Tensor routed_experts_inference(const Tensor& x, const ops::InputNorm& norm, const Tensor& router,
                                const Tensor* router_bias, const Tensor& gate_up, const Tensor& down,
                                const MoeRouting& r, const Tensor& residual, Tensor* router_logits = nullptr,
                                Tensor* ids = nullptr);
MoeOutput routed_experts(Tape* tape, const Var& h, const Var& router, const Tensor* router_bias, const Var& gate_up,
                         const Var& down, const MoeRouting& routing, const Var& residual);

}  // namespace moe::ad
