// Routers: logits [tokens, experts] -> top_k expert ids and weights per token.
//
// Ranking is a strict total order: larger value first, then lower id, so ties go to the lower id;
// NaN ranks as -infinity, so bad logits still give distinct, valid ids. Ids come out best first.
// A top-k is kept as a small sorted list that candidates enter in id order: one comparison with the
// current k-th rejects most of them, and an equal value never passes an earlier (lower) id.
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

inline float rank_value(float v) { return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v; }

// The best `capacity` (value, id) pairs offered so far, in rank order.
class TopK {
 public:
  TopK(float* values, int32_t* ids, int64_t capacity) : values_(values), ids_(ids), capacity_(capacity) {}

  void reset() { size_ = 0; }

  // Candidates must come in increasing id order.
  void offer(float value, int32_t id) {
    value = rank_value(value);
    if (size_ == capacity_ && !(value > values_[size_ - 1])) return;
    int64_t at = size_ < capacity_ ? size_++ : capacity_ - 1;
    while (at > 0 && value > values_[at - 1]) {
      values_[at] = values_[at - 1];
      ids_[at] = ids_[at - 1];
      --at;
    }
    values_[at] = value;
    ids_[at] = id;
  }

  const int32_t* ids() const { return ids_; }
  const float* values() const { return values_; }

 private:
  float* values_;
  int32_t* ids_;
  int64_t capacity_;
  int64_t size_ = 0;
};

// logits [tokens, experts]; ids i32 and weights f32 [tokens, top_k]. Returns tokens.
int64_t check_router(const moe_tensor* logits, int32_t top_k, const moe_tensor* ids, const moe_tensor* weights) {
  check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
  const int64_t tokens = logits->shape[0], experts = logits->shape[1];
  if (top_k < 1 || top_k > experts)
    invalid("top_k=" + std::to_string(top_k) + " is outside [1, experts = " + std::to_string(experts) + "]");
  for (auto [t, name, dtype] : {std::tuple{ids, "ids", MOE_DTYPE_I32}, std::tuple{weights, "weights", MOE_DTYPE_F32}}) {
    check_tensor(t, name, dtype, 2);
    if (t->shape[0] != tokens || t->shape[1] != top_k)
      invalid(std::string(name) + " " + shape_string(*t) + " must be [tokens = " + std::to_string(tokens) +
              ", top_k = " + std::to_string(top_k) + "]");
  }
  return tokens;
}

}  // namespace

moe_status cpu_route_softmax_topk(moe_backend* be, const moe_tensor* logits, int32_t top_k, int32_t normalize,
                                  moe_tensor* ids, moe_tensor* weights) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t tokens = check_router(logits, top_k, ids, weights);
    const int64_t experts = logits->shape[1];
    const float* l = data_of<const float>(logits);
    int32_t* id = data_of<int32_t>(ids);
    float* w = data_of<float>(weights);
    // Per worker: the top-k values, then the exponentials of one row.
    const int64_t per_worker = top_k + experts;
    std::vector<float> scratch(static_cast<size_t>(per_worker * backend.threads));
    const int64_t min_tokens = kMinFloatsPerThread / (4 * experts + 1) + 1;
    parallel_workers(backend, tokens, min_tokens, 1, [&](int worker, int64_t begin, int64_t end) {
      float* top_values = scratch.data() + worker * per_worker;
      float* exps = top_values + top_k;
      for (int64_t t = begin; t < end; ++t) {
        const float* row = l + t * experts;
        int32_t* out_id = id + t * top_k;
        // softmax is monotonic: choosing by logits is choosing by probability, without the ties that
        // rounding the probabilities could add.
        TopK best(top_values, out_id, top_k);
        float largest = -std::numeric_limits<float>::infinity();
        for (int64_t e = 0; e < experts; ++e) {
          best.offer(row[e], static_cast<int32_t>(e));
          largest = row[e] > largest ? row[e] : largest;
        }
        const float sum = backend.kernels.exp_shifted_sum(row, largest, exps, experts);
        float chosen = 0.f;
        for (int64_t j = 0; j < top_k; ++j) chosen += exps[out_id[j]];
        const float divisor = normalize ? chosen : sum;
        for (int64_t j = 0; j < top_k; ++j) w[t * top_k + j] = exps[out_id[j]] / divisor;
      }
    });
  });
}

moe_status cpu_route_sigmoid_group_topk(moe_backend* be, const moe_tensor* logits, const moe_tensor* bias,
                                        int32_t n_group, int32_t topk_group, int32_t top_k, int32_t normalize,
                                        float scaling, moe_tensor* ids, moe_tensor* weights) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t tokens = check_router(logits, top_k, ids, weights);
    const int64_t experts = logits->shape[1];
    if (n_group < 1 || experts % n_group)
      invalid("n_group=" + std::to_string(n_group) + " does not divide the " + std::to_string(experts) + " experts");
    const int64_t group_size = experts / n_group;
    if (topk_group < 1 || topk_group > n_group)
      invalid("topk_group=" + std::to_string(topk_group) + " is outside [1, n_group = " + std::to_string(n_group) +
              "]");
    if (top_k > topk_group * group_size)
      invalid("top_k=" + std::to_string(top_k) + " is more than the " + std::to_string(topk_group * group_size) +
              " experts of the chosen groups");
    if (bias && check_tensor(bias, "bias", MOE_DTYPE_F32, -1) != experts)
      invalid("bias " + shape_string(*bias) + " must have one entry per expert (" + std::to_string(experts) + ")");
    const float* l = data_of<const float>(logits);
    const float* b = bias ? data_of<const float>(bias) : nullptr;
    int32_t* id = data_of<int32_t>(ids);
    float* w = data_of<float>(weights);

    // Per worker: scores, choice values, group scores, the top groups and the top-k values.
    const int64_t per_worker = 2 * experts + n_group + 2 * topk_group + top_k;
    std::vector<float> scratch(static_cast<size_t>(per_worker * backend.threads));
    std::vector<int32_t> group_ids(static_cast<size_t>(topk_group * backend.threads));
    std::vector<char> allowed_groups(static_cast<size_t>(n_group * backend.threads));
    const int64_t min_tokens = kMinFloatsPerThread / (4 * experts + 1) + 1;
    parallel_workers(backend, tokens, min_tokens, 1, [&](int worker, int64_t begin, int64_t end) {
      float* s = scratch.data() + worker * per_worker;
      float* choice = s + experts;
      float* group_score = choice + experts;
      float* top_group_values = group_score + n_group;
      float* top_values = top_group_values + topk_group;
      int32_t* top_groups = group_ids.data() + worker * topk_group;
      char* allowed = allowed_groups.data() + worker * n_group;
      for (int64_t t = begin; t < end; ++t) {
        const float* row = l + t * experts;
        backend.kernels.sigmoid(row, s, experts);
        for (int64_t e = 0; e < experts; ++e) choice[e] = b ? s[e] + b[e] : s[e];
        // A group's score: the sum of its two best choice values (its only one for groups of one).
        for (int64_t g = 0; g < n_group; ++g) {
          float first = -std::numeric_limits<float>::infinity(), second = first;
          for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e) {
            const float v = rank_value(choice[e]);
            if (v > first) {
              second = first;
              first = v;
            } else if (v > second) {
              second = v;
            }
          }
          group_score[g] = group_size >= 2 ? first + second : first;
        }
        TopK groups(top_group_values, top_groups, topk_group);
        for (int64_t g = 0; g < n_group; ++g) groups.offer(group_score[g], static_cast<int32_t>(g));
        for (int64_t g = 0; g < n_group; ++g) allowed[g] = 0;
        for (int64_t j = 0; j < topk_group; ++j) allowed[top_groups[j]] = 1;
        // Experts of the other groups are out, whatever their values.
        int32_t* out_id = id + t * top_k;
        TopK best(top_values, out_id, top_k);
        for (int64_t g = 0; g < n_group; ++g)
          if (allowed[g])
            for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e)
              best.offer(choice[e], static_cast<int32_t>(e));
        double sum = 0;
        for (int64_t j = 0; j < top_k; ++j) sum += s[out_id[j]];
        for (int64_t j = 0; j < top_k; ++j) {
          const double weight = normalize ? s[out_id[j]] / (sum + 1e-20) : s[out_id[j]];
          w[t * top_k + j] = static_cast<float>(weight * scaling);
        }
      }
    });
  });
}

}  // namespace moe_cpu
