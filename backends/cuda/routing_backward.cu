// Gradients of the routers' weights with respect to the logits, one thread per token, in double (the
// rows are short). With g_j the upstream gradient of the weight of choice j:
//   softmax, not normalized (w_j = p_id):       dl_e = p_e (sum_{j: id_j = e} g_j - sum_j g_j w_j)
//   softmax, normalized (a softmax over the chosen logits): dl_id = w_j (g_j - sum_k g_k w_k)
//   sigmoid (w_j = c s_id / (S + 1e-20) or c s_id): through ds = s (1 - s), chosen experts only.
#include <string>
#include <vector>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "device_math.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

__global__ void softmax_router_backward(const float* logits, const int32_t* ids, const float* dweights, int64_t tokens,
                                        int64_t experts, int64_t top_k, bool normalize, float* dlogits) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  const float* row = logits + t * experts;
  const int32_t* chosen = ids + t * top_k;
  const float* g = dweights + t * top_k;
  float* out = dlogits + t * experts;
  double largest = -INFINITY;
  for (int64_t e = 0; e < experts; ++e) largest = fmax(largest, static_cast<double>(row[e]));
  double sum = 0, weighted = 0;
  if (normalize) {
    for (int64_t j = 0; j < top_k; ++j) sum += exp(row[chosen[j]] - largest);
    for (int64_t j = 0; j < top_k; ++j) weighted += g[j] * exp(row[chosen[j]] - largest) / sum;
    for (int64_t e = 0; e < experts; ++e) out[e] = 0.f;
    for (int64_t j = 0; j < top_k; ++j)
      out[chosen[j]] += static_cast<float>(exp(row[chosen[j]] - largest) / sum * (g[j] - weighted));
  } else {
    for (int64_t e = 0; e < experts; ++e) sum += exp(row[e] - largest);
    for (int64_t j = 0; j < top_k; ++j) weighted += g[j] * exp(row[chosen[j]] - largest) / sum;
    for (int64_t e = 0; e < experts; ++e) out[e] = static_cast<float>(-exp(row[e] - largest) / sum * weighted);
    for (int64_t j = 0; j < top_k; ++j)
      out[chosen[j]] += static_cast<float>(g[j] * exp(row[chosen[j]] - largest) / sum);
  }
}

__device__ __forceinline__ double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

__global__ void sigmoid_router_backward(const float* logits, const int32_t* ids, const float* dweights, int64_t tokens,
                                        int64_t experts, int64_t top_k, bool normalize, float scaling,
                                        float* dlogits) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  const float* row = logits + t * experts;
  const int32_t* chosen = ids + t * top_k;
  const float* g = dweights + t * top_k;
  float* out = dlogits + t * experts;
  // dL/ds of the chosen experts, gathered in out, then times ds/dl = s (1 - s) for every expert (zero
  // stays zero for the others).
  for (int64_t e = 0; e < experts; ++e) out[e] = 0.f;
  double sum = 0, weighted = 0;
  for (int64_t j = 0; j < top_k; ++j) {
    sum += sigmoid(row[chosen[j]]);
    weighted += g[j] * sigmoid(row[chosen[j]]);
  }
  const double denominator = sum + 1e-20;
  for (int64_t j = 0; j < top_k; ++j)
    out[chosen[j]] += static_cast<float>(normalize ? scaling * (g[j] / denominator - weighted / (denominator * denominator))
                                                   : scaling * g[j]);
  for (int64_t e = 0; e < experts; ++e) {
    const double s = sigmoid(row[e]);
    out[e] = static_cast<float>(out[e] * s * (1 - s));
  }
}

// Checks the shapes and ids of a router backward call (the ids are read on the host); returns top_k.
int64_t check_router_backward(moe_backend& be, const moe_tensor* logits, const moe_tensor* ids,
                              const moe_tensor* dweights, const moe_tensor* dlogits) {
  check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
  check_tensor(ids, "ids", MOE_DTYPE_I32, 2);
  check_tensor(dweights, "dweights", MOE_DTYPE_F32, 2);
  check_tensor(dlogits, "dlogits", MOE_DTYPE_F32, 2);
  const int64_t tokens = logits->shape[0], experts = logits->shape[1], top_k = ids->shape[1];
  if (ids->shape[0] != tokens || dweights->shape[0] != tokens || dweights->shape[1] != top_k ||
      dlogits->shape[0] != tokens || dlogits->shape[1] != experts)
    invalid("logits " + shape_string(*logits) + ", ids " + shape_string(*ids) + ", dweights " +
            shape_string(*dweights) + " and dlogits " + shape_string(*dlogits) + " do not agree");
  const std::vector<int32_t> id = download_vector<int32_t>(be, ids->data, tokens * top_k);
  for (int64_t i = 0; i < tokens * top_k; ++i)
    if (id[i] < 0 || id[i] >= experts)
      invalid("ids[" + std::to_string(i / top_k) + ", " + std::to_string(i % top_k) + "] = " + std::to_string(id[i]) +
              " is outside [0, experts = " + std::to_string(experts) + ")");
  return top_k;
}

}  // namespace

moe_status cuda_route_softmax_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                            int32_t normalize, const moe_tensor* dweights, moe_tensor* dlogits) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t top_k = check_router_backward(b, logits, ids, dweights, dlogits);
    const int64_t tokens = logits->shape[0];
    if (tokens == 0) return;
    softmax_router_backward<<<grid_for(tokens, 128), 128, 0, b.stream>>>(
        data_of<const float>(logits), data_of<const int32_t>(ids), data_of<const float>(dweights), tokens,
        logits->shape[1], top_k, normalize != 0, data_of<float>(dlogits));
    check_launch("softmax_router_backward");
  });
}

moe_status cuda_route_sigmoid_topk_backward(moe_backend* be, const moe_tensor* logits, const moe_tensor* ids,
                                            int32_t normalize, float scaling, const moe_tensor* dweights,
                                            moe_tensor* dlogits) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t top_k = check_router_backward(b, logits, ids, dweights, dlogits);
    const int64_t tokens = logits->shape[0];
    if (tokens == 0) return;
    sigmoid_router_backward<<<grid_for(tokens, 128), 128, 0, b.stream>>>(
        data_of<const float>(logits), data_of<const int32_t>(ids), data_of<const float>(dweights), tokens,
        logits->shape[1], top_k, normalize != 0, scaling, data_of<float>(dlogits));
    check_launch("sigmoid_router_backward");
  });
}

}  // namespace moe_cuda
