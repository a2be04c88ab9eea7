// Plain double-precision references for the backend ops (api/include/moe/moe_plugin.h documents
// each one), written the simplest way, one function per op: the op tests compare every backend
// against these. Inputs are the exact values the backend sees (bf16 inputs already rounded).
#pragma once

#include <cstdint>
#include <vector>

namespace moe::reference {

// c[m, n] = alpha * sum_k a'[m, k] * b'[k, n] + beta * c[m, n]; a' = a [m, k] or, with trans_a, the
// transpose of a [k, m]; b' = b [k, n] or, with trans_b, the transpose of b [n, k]. lda, ldb, ldc are
// the row strides of a, b, c as stored.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const std::vector<float>& a,
          int64_t lda, const std::vector<float>& b, int64_t ldb, double beta, std::vector<double>& c, int64_t ldc);

std::vector<double> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight, double eps);

// x [tokens, heads, head_dim], rotated in place (layout 0 = NEOX, 1 = INTERLEAVED).
void rope(std::vector<double>& x, int64_t tokens, int64_t heads, int64_t head_dim,
          const std::vector<int32_t>& positions, const std::vector<float>& cos_table,
          const std::vector<float>& sin_table, int rot_offset, int rot_dim, int layout);

// x [rows, 2 * width] -> [rows, width]; activation 1 = SiLU, 2 = GELU (tanh).
std::vector<double> gated_act(const std::vector<float>& x, int64_t rows, int64_t width, int activation);

std::vector<double> embedding(const std::vector<int32_t>& ids, const std::vector<float>& table, int64_t dim);

struct Routing {
  std::vector<int32_t> ids;
  std::vector<double> weights;
};

Routing route_softmax_topk(const std::vector<float>& logits, int64_t tokens, int64_t experts, int top_k,
                           bool normalize);

// bias may be empty (no bias).
Routing route_sigmoid_group_topk(const std::vector<float>& logits, const std::vector<float>& bias, int64_t tokens,
                                 int64_t experts, int n_group, int topk_group, int top_k, bool normalize,
                                 double scaling);

struct Permuted {
  std::vector<float> x_sorted;
  std::vector<int64_t> offsets;
  std::vector<int32_t> source;
};

Permuted moe_permute(const std::vector<float>& x, int64_t dim, const std::vector<int32_t>& ids, int64_t top_k,
                     int num_experts);

// x [rows, dim]; gate_up [experts, 2 * width, dim]; down [experts, dim, width].
std::vector<double> expert_mlp(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& offsets,
                               const std::vector<float>& gate_up, const std::vector<float>& down, int64_t width,
                               int activation);

// out [tokens, dim] (its values are used when accumulate).
void moe_unpermute(const std::vector<float>& y_sorted, int64_t dim, const std::vector<int32_t>& source,
                   const std::vector<float>& weights, int64_t top_k, bool accumulate, std::vector<double>& out);

// q [tokens, heads, dk]; caches [slots, kv_heads, capacity, dk | dv] -> out [tokens, heads, dv].
std::vector<double> attention(const std::vector<float>& q, int64_t tokens, int64_t heads, int64_t dk,
                              const std::vector<float>& k_cache, const std::vector<float>& v_cache, int64_t kv_heads,
                              int64_t capacity, int64_t dv, const std::vector<int32_t>& slot,
                              const std::vector<int32_t>& kv_len, double scale);

// ---- training ----

struct RmsnormGradients {
  std::vector<double> dx, dweight;
};
RmsnormGradients rmsnorm_backward(const std::vector<float>& x, const std::vector<float>& weight,
                                  const std::vector<float>& dy, double eps);

// x [rows, 2 * width], dy [rows, width] -> dx [rows, 2 * width].
std::vector<double> gated_act_backward(const std::vector<float>& x, const std::vector<float>& dy, int64_t rows,
                                       int64_t width, int activation);

struct AttentionGradients {
  std::vector<double> dq, dk_cache, dv_cache;  // the cache gradients start from the values passed in
};
AttentionGradients attention_backward(const std::vector<float>& q, int64_t tokens, int64_t heads, int64_t dk,
                                      const std::vector<float>& k_cache, const std::vector<float>& v_cache,
                                      int64_t kv_heads, int64_t capacity, int64_t dv, const std::vector<int32_t>& slot,
                                      const std::vector<int32_t>& kv_len, double scale, const std::vector<float>& dout,
                                      std::vector<double> dk_cache, std::vector<double> dv_cache);

// The routers' weights for given ids, as functions of the logits (for the gradients below).
std::vector<double> softmax_route_weights(const std::vector<double>& logits, int64_t experts,
                                          const std::vector<int32_t>& ids, int64_t top_k, bool normalize);
std::vector<double> sigmoid_route_weights(const std::vector<double>& logits, int64_t experts,
                                          const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                          double scaling);
std::vector<double> route_softmax_topk_backward(const std::vector<float>& logits, int64_t experts,
                                                const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                                const std::vector<float>& dweights);
std::vector<double> route_sigmoid_topk_backward(const std::vector<float>& logits, int64_t experts,
                                                const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                                double scaling, const std::vector<float>& dweights);

struct UnpermuteGradients {
  std::vector<double> dy_sorted, dweights;
};
UnpermuteGradients moe_unpermute_backward(const std::vector<float>& y_sorted, int64_t dim,
                                          const std::vector<int32_t>& source, const std::vector<float>& weights,
                                          int64_t top_k, const std::vector<float>& dout);

struct ExpertGradients {
  std::vector<double> dx, dgate_up, ddown;  // the weight gradients start from the values passed in
};
ExpertGradients expert_mlp_backward(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& offsets,
                                    const std::vector<float>& gate_up, const std::vector<float>& down, int64_t width,
                                    int activation, const std::vector<float>& dy, std::vector<double> dgate_up,
                                    std::vector<double> ddown);

struct CrossEntropy {
  std::vector<double> loss, dlogits;
};
CrossEntropy cross_entropy(const std::vector<float>& logits, int64_t vocab, const std::vector<int32_t>& labels,
                           int ignore_index, double label_smoothing, double grad_scale);

struct AdamState {
  std::vector<double> param, m, v;
};
void adamw_update(AdamState& state, const std::vector<float>& grad, double lr, double beta1, double beta2, double eps,
                  double weight_decay, int64_t step);

// Philox4x32-10 (all four output words), and the Gumbel noise add_gumbel_noise adds at flat index i.
std::vector<uint32_t> philox4x32_10(const std::vector<uint32_t>& counter, const std::vector<uint32_t>& key);
double gumbel_noise(uint64_t seed, uint64_t index);

}  // namespace moe::reference
