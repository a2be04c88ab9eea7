#include "train/router_losses.h"

#include <algorithm>
#include <cmath>

namespace moe {
namespace {

void softmax_row(const float* logits, int64_t n, std::vector<double>& p) {
  p.resize(static_cast<size_t>(n));
  double mx = *std::max_element(logits, logits + n), sum = 0;
  for (int64_t e = 0; e < n; ++e) sum += p[e] = std::exp(static_cast<double>(logits[e]) - mx);
  for (auto& v : p) v /= sum;
}

// The plain softmax top-k (what the loss counts as assignments), lower ids first on ties.
std::vector<int32_t> top_k_of(const std::vector<double>& p, int k) {
  std::vector<int32_t> idx(p.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

void ensure_grad(RouterLayer& l) {
  if (l.dlogits.size() != l.logits.size()) l.dlogits.assign(l.logits.size(), 0.f);
}

}  // namespace

double load_balancing_loss(std::vector<RouterLayer>& layers, int64_t experts, int top_k, double coef) {
  std::vector<double> assigned(static_cast<size_t>(experts), 0.0), prob_sum(static_cast<size_t>(experts), 0.0);
  double rows = 0;
  std::vector<double> p;
  for (const RouterLayer& l : layers) {
    const int64_t tokens = static_cast<int64_t>(l.logits.size()) / experts;
    for (int64_t t = 0; t < tokens; ++t) {
      softmax_row(&l.logits[t * experts], experts, p);
      for (int32_t e : top_k_of(p, top_k)) assigned[e] += 1;
      for (int64_t e = 0; e < experts; ++e) prob_sum[e] += p[e];
    }
    rows += static_cast<double>(tokens);
  }
  if (rows == 0) return 0;
  double loss = 0;
  for (int64_t e = 0; e < experts; ++e) loss += (assigned[e] / rows) * (prob_sum[e] / rows);
  loss *= static_cast<double>(experts);
  // d loss / d p[row, e] = E * assigned[e] / rows^2, then through each row's softmax.
  std::vector<double> g(static_cast<size_t>(experts));
  for (int64_t e = 0; e < experts; ++e) g[e] = static_cast<double>(experts) * assigned[e] / (rows * rows);
  for (RouterLayer& l : layers) {
    ensure_grad(l);
    const int64_t tokens = static_cast<int64_t>(l.logits.size()) / experts;
    for (int64_t t = 0; t < tokens; ++t) {
      softmax_row(&l.logits[t * experts], experts, p);
      double dot = 0;
      for (int64_t e = 0; e < experts; ++e) dot += p[e] * g[e];
      for (int64_t e = 0; e < experts; ++e) l.dlogits[t * experts + e] += static_cast<float>(coef * p[e] * (g[e] - dot));
    }
  }
  return loss;
}

double router_z_loss(std::vector<RouterLayer>& layers, int64_t experts, double coef) {
  double total = 0, rows = 0;
  for (const RouterLayer& l : layers) rows += static_cast<double>(l.logits.size() / experts);
  if (rows == 0) return 0;
  std::vector<double> p;
  for (RouterLayer& l : layers) {
    ensure_grad(l);
    const int64_t tokens = static_cast<int64_t>(l.logits.size()) / experts;
    for (int64_t t = 0; t < tokens; ++t) {
      const float* row = &l.logits[t * experts];
      double mx = *std::max_element(row, row + experts), sum = 0;
      for (int64_t e = 0; e < experts; ++e) sum += std::exp(static_cast<double>(row[e]) - mx);
      double lse = mx + std::log(sum);
      total += lse * lse;
      softmax_row(row, experts, p);
      for (int64_t e = 0; e < experts; ++e) l.dlogits[t * experts + e] += static_cast<float>(coef * 2 * lse * p[e] / rows);
    }
  }
  return total / rows;
}

double sequence_balance_loss(std::vector<RouterLayer>& layers, const std::vector<int64_t>& sequence_lengths,
                             int64_t experts, int top_k, double coef) {
  double total = 0;
  const double sequences = static_cast<double>(sequence_lengths.size());
  if (sequences == 0) return 0;
  for (RouterLayer& l : layers) {
    ensure_grad(l);
    int64_t start = 0;
    for (int64_t len : sequence_lengths) {
      std::vector<double> f(static_cast<size_t>(experts), 0.0), prob(static_cast<size_t>(experts), 0.0);
      std::vector<double> s(static_cast<size_t>(experts));
      for (int64_t t = start; t < start + len; ++t) {
        for (int j = 0; j < top_k; ++j) f[l.ids[t * top_k + j]] += 1;
        double sum = 0;
        for (int64_t e = 0; e < experts; ++e) sum += s[e] = 1 / (1 + std::exp(-static_cast<double>(l.logits[t * experts + e])));
        for (int64_t e = 0; e < experts; ++e) prob[e] += s[e] / sum / static_cast<double>(len);
      }
      for (auto& v : f) v *= static_cast<double>(experts) / (static_cast<double>(top_k) * static_cast<double>(len));
      for (int64_t e = 0; e < experts; ++e) total += f[e] * prob[e] / sequences;
      // d/d logits[t, e]: through P (f is a count): dL/dP_i = f_i / sequences; P_i = mean_t s_i / S.
      for (int64_t t = start; t < start + len; ++t) {
        double sum = 0;
        for (int64_t e = 0; e < experts; ++e) sum += s[e] = 1 / (1 + std::exp(-static_cast<double>(l.logits[t * experts + e])));
        double weighted = 0;  // sum_i f_i * s_i
        for (int64_t e = 0; e < experts; ++e) weighted += f[e] * s[e];
        for (int64_t e = 0; e < experts; ++e) {
          // d(s_i/S)/ds_e = (delta_ie - s_i/S) / S; ds_e/dl_e = s_e (1 - s_e)
          double dl_ds = (f[e] - weighted / sum) / sum;
          double g = dl_ds * s[e] * (1 - s[e]) / static_cast<double>(len) / sequences;
          l.dlogits[t * experts + e] += static_cast<float>(coef * g);
        }
      }
      start += len;
    }
  }
  return total;
}

std::vector<int64_t> expert_load(const RouterLayer& layer, int64_t experts) {
  std::vector<int64_t> load(static_cast<size_t>(experts), 0);
  for (int32_t e : layer.ids)
    if (e >= 0 && e < experts) ++load[e];
  return load;
}

}  // namespace moe
