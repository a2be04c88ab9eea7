// Token copies grouped by expert (moe_permute), their weighted sum back per token (moe_unpermute) and its
// backward pass. The expert ids are read on the host anyway (index_checks.h), so the grouping itself is
// a counting sort there, uploaded with the offsets; the kernels move the rows. While a step is recorded,
// both ops run on the device alone (moe_permute_device.h).
#include <string>
#include <vector>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "device_math.cuh"
#include "index_checks.h"
#include "moe_permute.h"
#include "moe_permute_device.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

__global__ void gather_token_rows(const float* x, const int32_t* source, int64_t top_k, int64_t dim, int64_t n,
                                  float* x_sorted) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / dim;
    x_sorted[i] = x[source[r] / top_k * dim + i % dim];
  }
}

// out[t, c] (+)= sum_j w[t, j] * y[row_of[t * top_k + j], c]: each output element is one thread's sum, in
// a fixed order, so the result does not depend on scheduling.
__global__ void combine_rows(const float* y, const int32_t* row_of, const float* w, int64_t top_k, int64_t dim,
                             int64_t n, bool accumulate, float* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / dim, c = i % dim;
    float sum = accumulate ? out[i] : 0.f;
    for (int64_t j = 0; j < top_k; ++j) sum += w[t * top_k + j] * y[int64_t{row_of[t * top_k + j]} * dim + c];
    out[i] = sum;
  }
}

// One block per sorted row r with f = source[r]: dy[r] = w[f] * dout[f / top_k]; dw[f] = y[r] . dout[f / top_k].
__global__ void unpermute_backward_rows(const float* y, const int32_t* source, const float* w, const float* dout,
                                        int64_t top_k, int64_t dim, float* dy, float* dw) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x, f = source[r];
  const float* g = dout + f / top_k * dim;
  const float weight = w[f];
  float dot = 0.f;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    dy[r * dim + c] = weight * g[c];
    dot += y[r * dim + c] * g[c];
  }
  if (!dw) return;
  dot = block_sum(dot, scratch);
  if (threadIdx.x == 0) dw[f] = dot;
}

}  // namespace

void check_unpermute(const moe_tensor* y_sorted, const moe_tensor* source, const moe_tensor* weights,
                     const moe_tensor* per_token, const char* per_token_name) {
  check_tensor(y_sorted, "y_sorted", MOE_DTYPE_F32, 2);
  check_tensor(weights, "weights", MOE_DTYPE_F32, 2);
  check_tensor(per_token, per_token_name, MOE_DTYPE_F32, 2);
  const int64_t rows = y_sorted->shape[0], dim = y_sorted->shape[1];
  const int64_t tokens = weights->shape[0], top_k = weights->shape[1];
  if (check_tensor(source, "source", MOE_DTYPE_I32, -1) != rows || tokens * top_k != rows ||
      per_token->shape[0] != tokens || per_token->shape[1] != dim)
    invalid("y_sorted " + shape_string(*y_sorted) + ", source " + shape_string(*source) + ", weights " +
            shape_string(*weights) + " and " + per_token_name + " " + shape_string(*per_token) +
            " do not agree (rows = tokens * top_k, " + per_token_name + " [tokens, dim])");
  if (rows > INT32_MAX) invalid("tokens * top_k = " + std::to_string(rows) + " does not fit the i32 source indices");
}

void check_permute(const moe_tensor* x, const moe_tensor* ids, int32_t num_experts, const moe_tensor* x_sorted,
                   const moe_tensor* offsets, const moe_tensor* source) {
  check_tensor(x, "x", MOE_DTYPE_F32, 2);
  check_tensor(ids, "ids", MOE_DTYPE_I32, 2);
  const int64_t tokens = x->shape[0], dim = x->shape[1], top_k = ids->shape[1];
  if (ids->shape[0] != tokens)
    invalid("ids " + shape_string(*ids) + " must have one row per token of x " + shape_string(*x));
  if (num_experts < 1) invalid("num_experts=" + std::to_string(num_experts) + " must be at least 1");
  const int64_t rows = tokens * top_k;
  if (check_tensor(x_sorted, "x_sorted", MOE_DTYPE_F32, -1) != rows * dim)
    invalid("x_sorted " + shape_string(*x_sorted) + " must hold [tokens * top_k = " + std::to_string(rows) +
            ", dim = " + std::to_string(dim) + "]");
  if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != int64_t{num_experts} + 1)
    invalid("offsets " + shape_string(*offsets) + " must have num_experts + 1 = " +
            std::to_string(int64_t{num_experts} + 1) + " entries");
  if (check_tensor(source, "source", MOE_DTYPE_I32, -1) != rows)
    invalid("source " + shape_string(*source) + " must have tokens * top_k = " + std::to_string(rows) + " entries");
  if (rows > INT32_MAX) invalid("tokens * top_k = " + std::to_string(rows) + " does not fit the i32 source indices");
}

moe_status cuda_moe_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* ids, int32_t num_experts,
                            moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source) {
  return guarded(be, [&](moe_backend& b) {
    check_permute(x, ids, num_experts, x_sorted, offsets, source);
    const int64_t tokens = x->shape[0], dim = x->shape[1], top_k = ids->shape[1], rows = tokens * top_k;
    if (recording(b)) {
      permute_on_device(b, data_of<const float>(x), data_of<const int32_t>(ids), tokens, top_k, num_experts, dim,
                        data_of<float>(x_sorted), data_of<int64_t>(offsets), data_of<int32_t>(source));
      return;
    }

    const std::vector<int32_t> id = download_vector<int32_t>(b, ids->data, rows);
    std::vector<int64_t> next(static_cast<size_t>(num_experts) + 1, 0);
    for (int64_t f = 0; f < rows; ++f) {
      if (id[f] < 0 || id[f] >= num_experts)
        invalid("ids[" + std::to_string(f / top_k) + ", " + std::to_string(f % top_k) + "] = " + std::to_string(id[f]) +
                " is outside [0, num_experts = " + std::to_string(num_experts) + ")");
      ++next[id[f] + 1];
    }
    for (int32_t e = 0; e < num_experts; ++e) next[e + 1] += next[e];
    const std::vector<int64_t> starts = next;
    upload(b, offsets->data, starts.data(), starts.size() * sizeof(int64_t));
    // Destinations in flat-index order keep each expert's rows in token order.
    std::vector<int32_t> src(static_cast<size_t>(rows));
    for (int64_t f = 0; f < rows; ++f) src[next[id[f]]++] = static_cast<int32_t>(f);
    upload(b, source->data, src.data(), src.size() * sizeof(int32_t));
    if (rows * dim == 0) return;
    gather_token_rows<<<grid_for(rows * dim), kThreads, 0, b.stream>>>(
        data_of<const float>(x), data_of<const int32_t>(source), top_k, dim, rows * dim, data_of<float>(x_sorted));
    check_launch("gather_token_rows");
  });
}

moe_status cuda_moe_unpermute(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                              const moe_tensor* weights, int32_t accumulate, moe_tensor* out) {
  return guarded(be, [&](moe_backend& b) {
    check_unpermute(y_sorted, source, weights, out, "out");
    const int64_t dim = y_sorted->shape[1], tokens = weights->shape[0], top_k = weights->shape[1];
    if (recording(b)) {
      unpermute_on_device(b, data_of<const float>(y_sorted), data_of<const int32_t>(source),
                          data_of<const float>(weights), tokens, top_k, dim, accumulate != 0, data_of<float>(out));
      return;
    }
    const DeviceBuffer row_of = upload_vector(b, inverse_of_source(b, source, y_sorted->shape[0]));
    const int64_t n = tokens * dim;
    if (n == 0) return;
    combine_rows<<<grid_for(n), kThreads, 0, b.stream>>>(data_of<const float>(y_sorted), row_of.as<const int32_t>(),
                                                         data_of<const float>(weights), top_k, dim, n,
                                                         accumulate != 0, data_of<float>(out));
    check_launch("combine_rows");
  });
}

moe_status cuda_moe_unpermute_backward(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                                       const moe_tensor* weights, const moe_tensor* dout, moe_tensor* dy_sorted,
                                       moe_tensor* dweights) {
  return guarded(be, [&](moe_backend& b) {
    check_unpermute(y_sorted, source, weights, dout, "dout");
    const int64_t rows = y_sorted->shape[0], dim = y_sorted->shape[1], top_k = weights->shape[1];
    if (check_tensor(dy_sorted, "dy_sorted", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dy_sorted " + shape_string(*dy_sorted) + " must have the shape of y_sorted " + shape_string(*y_sorted));
    if (dweights && check_tensor(dweights, "dweights", MOE_DTYPE_F32, -1) != rows)
      invalid("dweights " + shape_string(*dweights) + " must have the shape of weights " + shape_string(*weights));
    inverse_of_source(b, source, rows);  // only to check that source is a permutation
    if (rows == 0) return;
    unpermute_backward_rows<<<static_cast<unsigned>(rows), 128, 0, b.stream>>>(
        data_of<const float>(y_sorted), data_of<const int32_t>(source), data_of<const float>(weights),
        data_of<const float>(dout), top_k, dim, data_of<float>(dy_sorted),
        dweights ? data_of<float>(dweights) : nullptr);
    check_launch("unpermute_backward_rows");
  });
}

}  // namespace moe_cuda
