// Gradients of the routers' weights with respect to the logits, per token (in double: the rows are
// short). With g_e the sum of dweights over the slots that chose expert e:
//   softmax, not normalized (w_j = p_id):      dl_e = p_e (g_e - sum_j dw_j w_j)
//   softmax, normalized (a softmax over the chosen logits): dl_id = w_j (dw_j - sum_k dw_k w_k)
//   sigmoid (w_j = c s_id / (S + 1e-20) or c s_id): through ds = s (1 - s), chosen experts only.
#include <cmath>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

// Checks the shapes and ids of a router backward call; returns top_k.
int64_t check_router_backward(const moe_tensor* logits, const moe_tensor* ids, const moe_tensor* dweights,
                              const moe_tensor* dlogits) {
  check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
  check_tensor(ids, "ids", MOE_DTYPE_I32, 2);
  check_tensor(dweights, "dweights", MOE_DTYPE_F32, 2);
  check_tensor(dlogits, "dlogits", MOE_DTYPE_F32, 2);
  const int64_t tokens = logits->shape[0], experts = logits->shape[1], top_k = ids->shape[1];
  if (ids->shape[0] != tokens || dweights->shape[0] != tokens || dweights->shape[1] != top_k ||
      dlogits->shape[0] != tokens || dlogits->shape[1] != experts)
    invalid("logits " + shape_string(*logits) + ", ids " + shape_string(*ids) + ", dweights " +
            shape_string(*dweights) + " and dlogits " + shape_string(*dlogits) + " do not agree");
  const int32_t* id = data_of<const int32_t>(ids);
  for (int64_t i = 0; i < tokens * top_k; ++i)
    if (id[i] < 0 || id[i] >= experts)
      invalid("ids[" + std::to_string(i / top_k) + ", " + std::to_string(i % top_k) + "] = " + std::to_string(id[i]) +
              " is outside [0, experts = " + std::to_string(experts) + ")");
  return top_k;
}

}  // namespace

moe_status cpu_route_softmax_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, const moe_tensor* dweights, moe_tensor* dlogits) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t top_k = check_router_backward(logits, ids, dweights, dlogits);
    const int64_t tokens = logits->shape[0], experts = logits->shape[1];
    const float* l = data_of<const float>(logits);
    const int32_t* id = data_of<const int32_t>(ids);
    const float* dw = data_of<const float>(dweights);
    float* dl = data_of<float>(dlogits);
    parallel_ranges(backend, tokens, kMinFloatsPerThread / (8 * experts + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* row = l + t * experts;
        const int32_t* chosen = id + t * top_k;
        const float* g = dw + t * top_k;
        float* out = dl + t * experts;
        double largest = -INFINITY;
        for (int64_t e = 0; e < experts; ++e) largest = std::fmax(largest, row[e]);
        if (normalize) {
          double sum = 0, weighted = 0;
          for (int64_t j = 0; j < top_k; ++j) sum += std::exp(row[chosen[j]] - largest);
          for (int64_t j = 0; j < top_k; ++j) weighted += g[j] * std::exp(row[chosen[j]] - largest) / sum;
          for (int64_t e = 0; e < experts; ++e) out[e] = 0.f;
          for (int64_t j = 0; j < top_k; ++j)
            out[chosen[j]] += static_cast<float>(std::exp(row[chosen[j]] - largest) / sum * (g[j] - weighted));
        } else {
          double sum = 0, weighted = 0;
          for (int64_t e = 0; e < experts; ++e) sum += std::exp(row[e] - largest);
          for (int64_t j = 0; j < top_k; ++j) weighted += g[j] * std::exp(row[chosen[j]] - largest) / sum;
          for (int64_t e = 0; e < experts; ++e)
            out[e] = static_cast<float>(-std::exp(row[e] - largest) / sum * weighted);
          for (int64_t j = 0; j < top_k; ++j)
            out[chosen[j]] += static_cast<float>(g[j] * std::exp(row[chosen[j]] - largest) / sum);
        }
      }
    });
  });
}

moe_status cpu_route_sigmoid_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                           int32_t normalize, float scaling, const moe_tensor* dweights,
                                           moe_tensor* dlogits) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t top_k = check_router_backward(logits, ids, dweights, dlogits);
    const int64_t tokens = logits->shape[0], experts = logits->shape[1];
    const float* l = data_of<const float>(logits);
    const int32_t* id = data_of<const int32_t>(ids);
    const float* dw = data_of<const float>(dweights);
    float* dl = data_of<float>(dlogits);
    auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
    parallel_ranges(backend, tokens, kMinFloatsPerThread / (8 * experts + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* row = l + t * experts;
        const int32_t* chosen = id + t * top_k;
        const float* g = dw + t * top_k;
        float* out = dl + t * experts;
        // dL/ds of the chosen experts, gathered in out, then times ds/dl = s (1 - s) for every expert
        // (zero stays zero for the others).
        for (int64_t e = 0; e < experts; ++e) out[e] = 0.f;
        double sum = 0, weighted = 0;
        for (int64_t j = 0; j < top_k; ++j) {
          sum += sigmoid(row[chosen[j]]);
          weighted += g[j] * sigmoid(row[chosen[j]]);
        }
        const double denominator = sum + 1e-20;
        for (int64_t j = 0; j < top_k; ++j)
          out[chosen[j]] += static_cast<float>(
              normalize ? scaling * (g[j] / denominator - weighted / (denominator * denominator)) : scaling * g[j]);
        for (int64_t e = 0; e < experts; ++e) {
          const double s = sigmoid(row[e]);
          out[e] = static_cast<float>(out[e] * s * (1 - s));
        }
      }
    });
  });
}

}  // namespace moe_cpu
