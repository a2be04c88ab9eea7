#include "reference_ops.h"

#include <algorithm>
#include <cmath>

namespace moe::reference {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const std::vector<float>& a,
          int64_t lda, const std::vector<float>& b, int64_t ldb, double beta, std::vector<double>& c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) {
        double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += av * bv;
      }
      double old = beta == 0 ? 0 : beta * c[i * ldc + j];
      c[i * ldc + j] = alpha * sum + old;
    }
  }
}

std::vector<double> rmsnorm(const std::vector<float>& x, const std::vector<float>& weight, double eps) {
  int64_t width = static_cast<int64_t>(weight.size());
  int64_t rows = static_cast<int64_t>(x.size()) / width;
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double squares = 0;
    for (int64_t j = 0; j < width; ++j) squares += static_cast<double>(x[r * width + j]) * x[r * width + j];
    double inv = 1.0 / std::sqrt(squares / width + eps);
    for (int64_t j = 0; j < width; ++j) y[r * width + j] = x[r * width + j] * inv * weight[j];
  }
  return y;
}

void rope(std::vector<double>& x, int64_t tokens, int64_t heads, int64_t head_dim,
          const std::vector<int32_t>& positions, const std::vector<float>& cos_table,
          const std::vector<float>& sin_table, int rot_offset, int rot_dim, int layout) {
  int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t p = positions[t];
    for (int64_t h = 0; h < heads; ++h) {
      double* v = &x[(t * heads + h) * head_dim + rot_offset];
      for (int64_t i = 0; i < half; ++i) {
        double c = cos_table[p * half + i], s = sin_table[p * half + i];
        int64_t i1 = layout == 0 ? i : 2 * i;
        int64_t i2 = layout == 0 ? i + half : 2 * i + 1;
        double x1 = v[i1], x2 = v[i2];
        v[i1] = x1 * c - x2 * s;
        v[i2] = x2 * c + x1 * s;
      }
    }
  }
}

std::vector<double> gated_act(const std::vector<float>& x, int64_t rows, int64_t width, int activation) {
  std::vector<double> y(rows * width);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < width; ++j) {
      double g = x[r * 2 * width + j], u = x[r * 2 * width + width + j];
      double act;
      if (activation == 1) {
        act = g / (1.0 + std::exp(-g));
      } else {
        double inner = std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g);
        act = 0.5 * g * (1.0 + std::tanh(inner));
      }
      y[r * width + j] = act * u;
    }
  }
  return y;
}

std::vector<double> embedding(const std::vector<int32_t>& ids, const std::vector<float>& table, int64_t dim) {
  std::vector<double> out(ids.size() * dim);
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t j = 0; j < dim; ++j) out[t * dim + j] = table[ids[t] * dim + j];
  return out;
}

namespace {

// Indices of the `count` largest values, best first; ties go to the lower index. Entries with
// allowed[i] == false are never chosen.
std::vector<int32_t> top_indices(const std::vector<double>& values, int count, const std::vector<bool>& allowed) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < values.size(); ++i)
    if (allowed.empty() || allowed[i]) order.push_back(static_cast<int32_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return values[a] > values[b]; });
  order.resize(count);
  return order;
}

}  // namespace

Routing route_softmax_topk(const std::vector<float>& logits, int64_t tokens, int64_t experts, int top_k,
                           bool normalize) {
  Routing r;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> p(experts);
    double largest = -INFINITY, sum = 0;
    for (int64_t e = 0; e < experts; ++e) largest = std::max(largest, static_cast<double>(logits[t * experts + e]));
    for (int64_t e = 0; e < experts; ++e) sum += p[e] = std::exp(logits[t * experts + e] - largest);
    for (int64_t e = 0; e < experts; ++e) p[e] /= sum;
    std::vector<int32_t> chosen = top_indices(p, top_k, {});
    double chosen_sum = 0;
    for (int32_t e : chosen) chosen_sum += p[e];
    for (int32_t e : chosen) {
      r.ids.push_back(e);
      r.weights.push_back(normalize ? p[e] / chosen_sum : p[e]);
    }
  }
  return r;
}

Routing route_sigmoid_group_topk(const std::vector<float>& logits, const std::vector<float>& bias, int64_t tokens,
                                 int64_t experts, int n_group, int topk_group, int top_k, bool normalize,
                                 double scaling) {
  Routing r;
  int64_t group_size = experts / n_group;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> s(experts), choice(experts);
    for (int64_t e = 0; e < experts; ++e) {
      s[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[t * experts + e])));
      choice[e] = bias.empty() ? s[e] : s[e] + bias[e];
    }
    std::vector<double> group_score(n_group);
    for (int g = 0; g < n_group; ++g) {
      std::vector<double> members(choice.begin() + g * group_size, choice.begin() + (g + 1) * group_size);
      std::vector<int32_t> best = top_indices(members, group_size >= 2 ? 2 : 1, {});
      for (int32_t i : best) group_score[g] += members[i];
    }
    std::vector<int32_t> groups = top_indices(group_score, topk_group, {});
    std::vector<bool> allowed(experts, false);
    for (int32_t g : groups)
      for (int64_t e = 0; e < group_size; ++e) allowed[g * group_size + e] = true;
    std::vector<int32_t> chosen = top_indices(choice, top_k, allowed);
    double sum = 0;
    for (int32_t e : chosen) sum += s[e];
    for (int32_t e : chosen) {
      r.ids.push_back(e);
      r.weights.push_back((normalize ? s[e] / (sum + 1e-20) : s[e]) * scaling);
    }
  }
  return r;
}

Permuted moe_permute(const std::vector<float>& x, int64_t dim, const std::vector<int32_t>& ids, int64_t top_k,
                     int num_experts) {
  Permuted p;
  p.offsets.push_back(0);
  for (int e = 0; e < num_experts; ++e) {
    for (size_t f = 0; f < ids.size(); ++f) {
      if (ids[f] != e) continue;
      int64_t token = static_cast<int64_t>(f) / top_k;
      p.x_sorted.insert(p.x_sorted.end(), x.begin() + token * dim, x.begin() + (token + 1) * dim);
      p.source.push_back(static_cast<int32_t>(f));
    }
    p.offsets.push_back(static_cast<int64_t>(p.source.size()));
  }
  return p;
}

std::vector<double> expert_mlp(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& offsets,
                               const std::vector<float>& gate_up, const std::vector<float>& down, int64_t width,
                               int activation) {
  std::vector<double> y(x.size(), 0.0);
  int64_t experts = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t e = 0; e < experts; ++e) {
    const float* wgu = &gate_up[e * 2 * width * dim];
    const float* wd = &down[e * dim * width];
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r) {
      std::vector<double> hd(2 * width);
      for (int64_t j = 0; j < 2 * width; ++j) {
        double sum = 0;
        for (int64_t c = 0; c < dim; ++c) sum += static_cast<double>(x[r * dim + c]) * wgu[j * dim + c];
        hd[j] = sum;
      }
      std::vector<double> a(width);
      for (int64_t j = 0; j < width; ++j) {
        double g = hd[j], u = hd[width + j];
        double act = activation == 1 ? g / (1.0 + std::exp(-g))
                                     : 0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)));
        a[j] = act * u;
      }
      for (int64_t c = 0; c < dim; ++c) {
        double sum = 0;
        for (int64_t j = 0; j < width; ++j) sum += a[j] * wd[c * width + j];
        y[r * dim + c] = sum;
      }
    }
  }
  return y;
}

void moe_unpermute(const std::vector<float>& y_sorted, int64_t dim, const std::vector<int32_t>& source,
                   const std::vector<float>& weights, int64_t top_k, bool accumulate, std::vector<double>& out) {
  int64_t tokens = static_cast<int64_t>(weights.size()) / top_k;
  if (!accumulate) std::fill(out.begin(), out.begin() + tokens * dim, 0.0);
  for (size_t row = 0; row < source.size(); ++row) {
    int64_t f = source[row], token = f / top_k;
    for (int64_t c = 0; c < dim; ++c) out[token * dim + c] += static_cast<double>(weights[f]) * y_sorted[row * dim + c];
  }
}

std::vector<double> attention(const std::vector<float>& q, int64_t tokens, int64_t heads, int64_t dk,
                              const std::vector<float>& k_cache, const std::vector<float>& v_cache, int64_t kv_heads,
                              int64_t capacity, int64_t dv, const std::vector<int32_t>& slot,
                              const std::vector<int32_t>& kv_len, double scale) {
  std::vector<double> out(tokens * heads * dv);
  int64_t group = heads / kv_heads;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      int64_t kvh = h / group;
      const float* qv = &q[(t * heads + h) * dk];
      const float* kbase = &k_cache[(slot[t] * kv_heads + kvh) * capacity * dk];
      const float* vbase = &v_cache[(slot[t] * kv_heads + kvh) * capacity * dv];
      std::vector<double> scores(kv_len[t]);
      double largest = -INFINITY;
      for (int64_t j = 0; j < kv_len[t]; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < dk; ++d) dot += static_cast<double>(qv[d]) * kbase[j * dk + d];
        scores[j] = dot * scale;
        largest = std::max(largest, scores[j]);
      }
      double sum = 0;
      for (double& s : scores) sum += s = std::exp(s - largest);
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < kv_len[t]; ++j) acc += scores[j] * vbase[j * dv + c];
        out[(t * heads + h) * dv + c] = acc / sum;
      }
    }
  }
  return out;
}

}  // namespace moe::reference

// ---- training ----
namespace moe::reference {

RmsnormGradients rmsnorm_backward(const std::vector<float>& x, const std::vector<float>& weight,
                                  const std::vector<float>& dy, double eps) {
  int64_t width = static_cast<int64_t>(weight.size()), rows = static_cast<int64_t>(x.size()) / width;
  RmsnormGradients g{std::vector<double>(x.size()), std::vector<double>(width, 0.0)};
  for (int64_t r = 0; r < rows; ++r) {
    double squares = 0, dot = 0;
    for (int64_t j = 0; j < width; ++j) {
      squares += static_cast<double>(x[r * width + j]) * x[r * width + j];
      dot += static_cast<double>(x[r * width + j]) * weight[j] * dy[r * width + j];
    }
    double rstd = 1.0 / std::sqrt(squares / width + eps);
    for (int64_t j = 0; j < width; ++j) {
      g.dx[r * width + j] = rstd * weight[j] * dy[r * width + j] - x[r * width + j] * rstd * rstd * rstd * dot / width;
      g.dweight[j] += dy[r * width + j] * x[r * width + j] * rstd;
    }
  }
  return g;
}

std::vector<double> gated_act_backward(const std::vector<float>& x, const std::vector<float>& dy, int64_t rows,
                                       int64_t width, int activation) {
  std::vector<double> dx(rows * 2 * width);
  const double c = std::sqrt(2.0 / M_PI), a = 0.044715;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < width; ++j) {
      double g = x[r * 2 * width + j], u = x[r * 2 * width + width + j], d = dy[r * width + j];
      double act, derivative;
      if (activation == 1) {
        double s = 1.0 / (1.0 + std::exp(-g));
        act = g * s;
        derivative = s + g * s * (1 - s);
      } else {
        double t = std::tanh(c * (g + a * g * g * g));
        act = 0.5 * g * (1 + t);
        derivative = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * c * (1 + 3 * a * g * g);
      }
      dx[r * 2 * width + j] = d * u * derivative;
      dx[r * 2 * width + width + j] = d * act;
    }
  }
  return dx;
}

AttentionGradients attention_backward(const std::vector<float>& q, int64_t tokens, int64_t heads, int64_t dk,
                                      const std::vector<float>& k_cache, const std::vector<float>& v_cache,
                                      int64_t kv_heads, int64_t capacity, int64_t dv, const std::vector<int32_t>& slot,
                                      const std::vector<int32_t>& kv_len, double scale, const std::vector<float>& dout,
                                      std::vector<double> dk_cache, std::vector<double> dv_cache) {
  AttentionGradients g{std::vector<double>(q.size(), 0.0), std::move(dk_cache), std::move(dv_cache)};
  int64_t group = heads / kv_heads;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      int64_t base = (slot[t] * kv_heads + h / group) * capacity, len = kv_len[t];
      const float* qv = &q[(t * heads + h) * dk];
      const float* dov = &dout[(t * heads + h) * dv];
      std::vector<double> p(len);
      double largest = -INFINITY, sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < dk; ++d) dot += static_cast<double>(qv[d]) * k_cache[(base + j) * dk + d];
        p[j] = dot * scale;
        largest = std::max(largest, p[j]);
      }
      for (auto& x : p) sum += x = std::exp(x - largest);
      for (auto& x : p) x /= sum;
      // out = sum_j p_j v_j; D = dout . out
      double d_row = 0;
      for (int64_t c = 0; c < dv; ++c) {
        double o = 0;
        for (int64_t j = 0; j < len; ++j) o += p[j] * v_cache[(base + j) * dv + c];
        d_row += dov[c] * o;
      }
      for (int64_t j = 0; j < len; ++j) {
        double dp = 0;
        for (int64_t c = 0; c < dv; ++c) dp += static_cast<double>(dov[c]) * v_cache[(base + j) * dv + c];
        double ds = p[j] * (dp - d_row) * scale;
        for (int64_t d = 0; d < dk; ++d) {
          g.dq[(t * heads + h) * dk + d] += ds * k_cache[(base + j) * dk + d];
          g.dk_cache[(base + j) * dk + d] += ds * qv[d];
        }
        for (int64_t c = 0; c < dv; ++c) g.dv_cache[(base + j) * dv + c] += p[j] * dov[c];
      }
    }
  }
  return g;
}

std::vector<double> softmax_route_weights(const std::vector<double>& logits, int64_t experts,
                                          const std::vector<int32_t>& ids, int64_t top_k, bool normalize) {
  int64_t tokens = static_cast<int64_t>(ids.size()) / top_k;
  std::vector<double> w(ids.size());
  for (int64_t t = 0; t < tokens; ++t) {
    double largest = -INFINITY, all = 0, chosen = 0;
    for (int64_t e = 0; e < experts; ++e) largest = std::max(largest, logits[t * experts + e]);
    for (int64_t e = 0; e < experts; ++e) all += std::exp(logits[t * experts + e] - largest);
    for (int64_t j = 0; j < top_k; ++j) chosen += std::exp(logits[t * experts + ids[t * top_k + j]] - largest);
    for (int64_t j = 0; j < top_k; ++j)
      w[t * top_k + j] = std::exp(logits[t * experts + ids[t * top_k + j]] - largest) / (normalize ? chosen : all);
  }
  return w;
}

std::vector<double> sigmoid_route_weights(const std::vector<double>& logits, int64_t experts,
                                          const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                          double scaling) {
  int64_t tokens = static_cast<int64_t>(ids.size()) / top_k;
  std::vector<double> w(ids.size());
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0;
    for (int64_t j = 0; j < top_k; ++j) sum += 1.0 / (1.0 + std::exp(-logits[t * experts + ids[t * top_k + j]]));
    for (int64_t j = 0; j < top_k; ++j) {
      double s = 1.0 / (1.0 + std::exp(-logits[t * experts + ids[t * top_k + j]]));
      w[t * top_k + j] = (normalize ? s / (sum + 1e-20) : s) * scaling;
    }
  }
  return w;
}

std::vector<double> route_softmax_topk_backward(const std::vector<float>& logits, int64_t experts,
                                                const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                                const std::vector<float>& dweights) {
  // The Jacobian of each weight, column by column, from the definition of softmax.
  int64_t tokens = static_cast<int64_t>(ids.size()) / top_k;
  std::vector<double> dl(logits.size(), 0.0);
  std::vector<double> l(logits.begin(), logits.end());
  std::vector<double> w = softmax_route_weights(l, experts, ids, top_k, normalize);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> p(experts);
    double largest = -INFINITY, sum = 0;
    for (int64_t e = 0; e < experts; ++e) largest = std::max(largest, l[t * experts + e]);
    for (int64_t e = 0; e < experts; ++e) sum += p[e] = std::exp(l[t * experts + e] - largest);
    for (auto& x : p) x /= sum;
    for (int64_t j = 0; j < top_k; ++j) {
      int32_t i = ids[t * top_k + j];
      for (int64_t e = 0; e < experts; ++e) {
        double dw_dl;
        if (normalize) {  // w_j = exp(l_i) / sum_k exp(l_{id_k})
          double share = 0;
          for (int64_t k = 0; k < top_k; ++k)
            if (ids[t * top_k + k] == e) share += w[t * top_k + k];
          dw_dl = w[t * top_k + j] * ((i == e ? 1.0 : 0.0) - share);
        } else {  // w_j = p_i
          dw_dl = p[i] * ((i == e ? 1.0 : 0.0) - p[e]);
        }
        dl[t * experts + e] += dweights[t * top_k + j] * dw_dl;
      }
    }
  }
  return dl;
}

std::vector<double> route_sigmoid_topk_backward(const std::vector<float>& logits, int64_t experts,
                                                const std::vector<int32_t>& ids, int64_t top_k, bool normalize,
                                                double scaling, const std::vector<float>& dweights) {
  int64_t tokens = static_cast<int64_t>(ids.size()) / top_k;
  std::vector<double> dl(logits.size(), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    auto s = [&](int64_t e) { return 1.0 / (1.0 + std::exp(-static_cast<double>(logits[t * experts + e]))); };
    double sum = 0;
    for (int64_t k = 0; k < top_k; ++k) sum += s(ids[t * top_k + k]);
    for (int64_t j = 0; j < top_k; ++j) {
      int32_t i = ids[t * top_k + j];
      for (int64_t e = 0; e < experts; ++e) {
        double count = 0;  // how often e was chosen: d sum / d s_e
        for (int64_t k = 0; k < top_k; ++k) count += ids[t * top_k + k] == e;
        double dw_ds =
            normalize
                ? scaling * ((i == e ? 1.0 : 0.0) / (sum + 1e-20) - s(i) * count / ((sum + 1e-20) * (sum + 1e-20)))
                : scaling * (i == e ? 1.0 : 0.0);
        dl[t * experts + e] += dweights[t * top_k + j] * dw_ds * s(e) * (1 - s(e));
      }
    }
  }
  return dl;
}

UnpermuteGradients moe_unpermute_backward(const std::vector<float>& y_sorted, int64_t dim,
                                          const std::vector<int32_t>& source, const std::vector<float>& weights,
                                          int64_t top_k, const std::vector<float>& dout) {
  UnpermuteGradients g{std::vector<double>(y_sorted.size()), std::vector<double>(weights.size())};
  for (size_t row = 0; row < source.size(); ++row) {
    int64_t f = source[row], token = f / top_k;
    double dot = 0;
    for (int64_t c = 0; c < dim; ++c) {
      g.dy_sorted[row * dim + c] = static_cast<double>(weights[f]) * dout[token * dim + c];
      dot += static_cast<double>(y_sorted[row * dim + c]) * dout[token * dim + c];
    }
    g.dweights[f] = dot;
  }
  return g;
}

ExpertGradients expert_mlp_backward(const std::vector<float>& x, int64_t dim, const std::vector<int64_t>& offsets,
                                    const std::vector<float>& gate_up, const std::vector<float>& down, int64_t width,
                                    int activation, const std::vector<float>& dy, std::vector<double> dgate_up,
                                    std::vector<double> ddown) {
  ExpertGradients g{std::vector<double>(x.size(), 0.0), std::move(dgate_up), std::move(ddown)};
  int64_t experts = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t e = 0; e < experts; ++e) {
    const float* w1 = &gate_up[e * 2 * width * dim];
    const float* w2 = &down[e * dim * width];
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r) {
      std::vector<float> h(2 * width);  // the row's gate|up projection, for gated_act_backward
      std::vector<double> a(width);
      for (int64_t j = 0; j < 2 * width; ++j) {
        double sum = 0;
        for (int64_t c = 0; c < dim; ++c) sum += static_cast<double>(x[r * dim + c]) * w1[j * dim + c];
        h[j] = static_cast<float>(sum);
      }
      std::vector<double> act = gated_act(h, 1, width, activation);
      std::vector<float> da(width);
      for (int64_t j = 0; j < width; ++j) {
        double sum = 0;
        for (int64_t c = 0; c < dim; ++c) {
          sum += static_cast<double>(dy[r * dim + c]) * w2[c * width + j];
          g.ddown[(e * dim + c) * width + j] += dy[r * dim + c] * act[j];
        }
        da[j] = static_cast<float>(sum);
      }
      std::vector<double> dh = gated_act_backward(h, da, 1, width, activation);
      for (int64_t j = 0; j < 2 * width; ++j)
        for (int64_t c = 0; c < dim; ++c) {
          g.dx[r * dim + c] += dh[j] * w1[j * dim + c];
          g.dgate_up[(e * 2 * width + j) * dim + c] += dh[j] * x[r * dim + c];
        }
    }
  }
  return g;
}

CrossEntropy cross_entropy(const std::vector<float>& logits, int64_t vocab, const std::vector<int32_t>& labels,
                           int ignore_index, double label_smoothing, double grad_scale) {
  int64_t rows = static_cast<int64_t>(labels.size());
  CrossEntropy ce{std::vector<double>(rows, 0.0), std::vector<double>(logits.size(), 0.0)};
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignore_index) continue;
    double largest = -INFINITY, sum = 0;
    for (int64_t v = 0; v < vocab; ++v) largest = std::max(largest, static_cast<double>(logits[r * vocab + v]));
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(logits[r * vocab + v] - largest);
    double lse = largest + std::log(sum), mean_nll = 0;
    for (int64_t v = 0; v < vocab; ++v) mean_nll += (lse - logits[r * vocab + v]) / vocab;
    ce.loss[r] = (1 - label_smoothing) * (lse - logits[r * vocab + labels[r]]) + label_smoothing * mean_nll;
    for (int64_t v = 0; v < vocab; ++v) {
      double target = (1 - label_smoothing) * (v == labels[r]) + label_smoothing / vocab;
      ce.dlogits[r * vocab + v] = grad_scale * (std::exp(logits[r * vocab + v] - lse) - target);
    }
  }
  return ce;
}

void adamw_update(AdamState& s, const std::vector<float>& grad, double lr, double beta1, double beta2, double eps,
                  double weight_decay, int64_t step) {
  for (size_t i = 0; i < grad.size(); ++i) {
    s.param[i] *= 1 - lr * weight_decay;
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * grad[i];
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * grad[i] * grad[i];
    double m_hat = s.m[i] / (1 - std::pow(beta1, step)), v_hat = s.v[i] / (1 - std::pow(beta2, step));
    s.param[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

std::vector<uint32_t> philox4x32_10(const std::vector<uint32_t>& counter, const std::vector<uint32_t>& key) {
  std::vector<uint32_t> c = counter, k = key;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    uint64_t p0 = uint64_t{0xD2511F53u} * c[0], p1 = uint64_t{0xCD9E8D57u} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
  }
  return c;
}

double gumbel_noise(uint64_t seed, uint64_t index) {
  std::vector<uint32_t> out = philox4x32_10(
      {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), 0, 0},
      {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  double u = (out[0] + 0.5) / 4294967296.0;
  return -std::log(-std::log(u));
}

}  // namespace moe::reference
