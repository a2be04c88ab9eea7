// Typed calls into the backend op table. Each checks the shapes and dtypes the op table documents
// (api/include/moe/moe_plugin.h) before calling, so a backend only ever sees consistent arguments,
// and turns a failed status into moe::Error.
#pragma once

#include "tensor/tensor.h"

namespace moe::ops {

// c[m, n] = alpha * a' . b' + beta * c, where a' = a [m, k] or a^T for a [k, m] (trans_a), and
// b' = b [k, n] or b^T for b [n, k] (trans_b). a, b, c are 2-D; their row strides are their widths.
void gemm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Tensor& c, float alpha = 1.f,
          float beta = 0.f);
// One product per head over blocks of larger row-major tensors: for h < heads,
//   c[h] = a[h]' . b[h]'   (a' = a [m, k], b' = b [k, n] or, with trans_b, b [n, k] transposed)
// where block h of x starts at element x_offset + h * x_step and its rows are x_ld elements apart.
// MLA's absorbed attention multiplies each head's query and output by its own slice of kv_b_proj.
struct HeadBlocks {
  const Tensor* t;
  int64_t offset, step, ld;
};
void gemm_per_head(int64_t heads, int64_t m, int64_t n, int64_t k, const HeadBlocks& a, const HeadBlocks& b,
                   bool trans_b, const HeadBlocks& c);
// y = x . w^T for a weight w [n, k] (nn.Linear layout): y [rows, n] is allocated.
Tensor linear(const Tensor& x, const Tensor& w);
// y += x . w^T
void linear_accumulate(const Tensor& x, const Tensor& w, Tensor& y);

void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& y);
Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps);
// linear(rmsnorm(x, norm_weight, eps), w) for x f32 [rows, dim]: one backend op where the plugin has
// rmsnorm_linear (plugin ABI 1.5; a recorded decode step runs it as one kernel), else the two ops: the same
// results either way. The norm's output is not returned (the backend writes it to a temporary).
Tensor rmsnorm_linear(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w);

void rope(Tensor& x, const Tensor& positions, const Tensor& cos_table, const Tensor& sin_table, int rot_offset,
          int rot_dim, int layout);

Tensor gated_act(const Tensor& gate_up, int activation);
void add(const Tensor& a, const Tensor& b, Tensor& y);
Tensor embedding(const Tensor& ids, const Tensor& table);
// dst[r, dst_col + c] = src[r, src_col + c] for r < rows, c < cols, over 2-D f32 tensors.
void copy_columns(Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t cols);

struct Routing {
  Tensor ids;      // i32 [tokens, top_k]
  Tensor weights;  // f32 [tokens, top_k]
};
Routing route_softmax_topk(const Tensor& logits, int top_k, bool normalize);
Routing route_sigmoid_group_topk(const Tensor& logits, const Tensor* bias, int n_group, int topk_group, int top_k,
                                 bool normalize, float scaling);

struct Permuted {
  Tensor x_sorted;  // f32 [tokens*top_k, dim]
  Tensor offsets;   // i64 [experts + 1]
  Tensor source;    // i32 [tokens*top_k]
};
Permuted moe_permute(const Tensor& x, const Tensor& ids, int num_experts);

// A MoE layer's router and dispatch: h = x, or rmsnorm(x, norm weight, eps) where a norm is given; logits =
// h . router^T, routing as route_sigmoid_group_topk (sigmoid, with bias and groups) or route_softmax_topk,
// then moe_permute(h, ids, experts). One backend op where the plugin has route_and_permute (plugin ABI 1.5;
// a recorded decode step runs it as one kernel), else the ops in turn: the same results either way.
struct InputNorm {
  const Tensor* weight = nullptr;  // f32 or bf16 [dim]; null: no norm
  float eps = 0.f;
};
struct RouterSpec {
  bool sigmoid = false;
  const Tensor* bias = nullptr;  // sigmoid only; may be null
  int n_group = 1, topk_group = 1, top_k = 1;
  bool normalize = true;
  float scaling = 1.f;
};
struct Dispatch {
  Tensor logits;  // f32 [tokens, experts]
  Routing routing;
  Permuted permuted;
};
Dispatch route_and_permute(const Tensor& x, const InputNorm& norm, const Tensor& router, const RouterSpec& spec);
Tensor expert_mlp(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                  int activation);
void moe_unpermute(const Tensor& y_sorted, const Tensor& source, const Tensor& weights, bool accumulate, Tensor& out);
// moe_unpermute(expert_mlp(x_sorted, offsets, gate_up, down, activation), source, weights, accumulate, out): one
// backend op where the plugin has expert_mlp_unpermute (plugin ABI 1.5; a recorded decode step runs the down
// product and the combination as one kernel), else the two ops: the same results either way.
void expert_mlp_unpermute(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                          int activation, const Tensor& source, const Tensor& weights, bool accumulate, Tensor& out);

void kv_store(const Tensor& k, const Tensor& v, const Tensor& slot, const Tensor& position, Tensor& k_cache,
              Tensor& v_cache);
void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot, const Tensor& kv_len,
               float scale, Tensor& out);
// rope(q) and rope(k) in place, then kv_store(k, v, slot, positions, k_cache, v_cache): one backend op where
// the plugin has rope_kv_store (plugin ABI 1.5; a recorded decode step runs it as one kernel), else the ops in
// turn: the same results either way.
struct RopeSpec {
  const Tensor* cos_table = nullptr;
  const Tensor* sin_table = nullptr;
  int rot_offset = 0, rot_dim = 0, layout = 0;
};
void rope_kv_store(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeSpec& rope,
                   const Tensor& slot, Tensor& k_cache, Tensor& v_cache);

}  // namespace moe::ops

// ---- training ----
namespace moe::ops {

// dx (written; may alias dy) and dweight (accumulated; null when frozen) of rmsnorm.
void rmsnorm_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, float eps, Tensor& dx, Tensor* dweight);
Tensor gated_act_backward(const Tensor& gate_up, const Tensor& dy, int activation);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);
void kv_load(const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot, const Tensor& position, Tensor& k,
             Tensor& v);
void attention_backward(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                        const Tensor& kv_len, float scale, const Tensor& out, const Tensor& dout, Tensor& dq,
                        Tensor& dk_cache, Tensor& dv_cache);
Tensor route_softmax_topk_backward(const Tensor& logits, const Tensor& ids, bool normalize, const Tensor& dweights);
Tensor route_sigmoid_topk_backward(const Tensor& logits, const Tensor& ids, bool normalize, float scaling,
                                   const Tensor& dweights);
// dy_sorted (written) and dweights (written; null when not needed).
void moe_unpermute_backward(const Tensor& y_sorted, const Tensor& source, const Tensor& weights, const Tensor& dout,
                            Tensor& dy_sorted, Tensor* dweights);
// dx (written; null when not needed), dgate_up and ddown (accumulated; null when frozen).
void expert_mlp_backward(const Tensor& x_sorted, const Tensor& offsets, const Tensor& gate_up, const Tensor& down,
                         int activation, const Tensor& dy, Tensor* dx, Tensor* dgate_up, Tensor* ddown);
// Per-row loss (written) and dlogits (written, may alias logits; null for evaluation).
void cross_entropy(const Tensor& logits, const Tensor& labels, int ignore_index, float label_smoothing,
                   float grad_scale, Tensor& loss, Tensor* dlogits);
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step);
double sum_squares(const Tensor& x);
void scale(Tensor& x, float alpha);
void add_gumbel_noise(Tensor& logits, uint64_t seed, uint64_t offset, float scale);
// dst = src (same element count and dtype).
void copy(const Tensor& src, Tensor& dst);
Tensor clone(const Tensor& src);

}  // namespace moe::ops

// ---- greedy decoding (plugin ABI 1.3) ----
namespace moe::ops {

// out[r] = the index of the largest value of row r of x (f32 [rows, n], n >= 1): the first one on ties,
// NaN never chosen (0 for a row of only NaN), as moe::argmax (model/sampler.h) does on the host.
// MOE_ERR_UNSUPPORTED naming the backend where it lacks the op (Backend::has_argmax_rows).
void argmax_rows(const Tensor& x, Tensor& out);  // out: i32 [rows]
Tensor argmax_rows(const Tensor& x);             // returns i32 [rows]

}  // namespace moe::ops
