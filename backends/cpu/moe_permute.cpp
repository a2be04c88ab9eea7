// Token copies grouped by expert (moe_permute), their weighted sum back per token (moe_unpermute)
// and its backward pass. The index work is a counting sort over tokens * top_k entries (serial: it
// is tiny); the row copies and sums, which move the data, are split over threads.
#include <cstring>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

// row_of[t * top_k + j]: the sorted row holding token t's j-th expert output. source must be a
// permutation, or some output would be missing.
std::vector<int64_t> invert_source(const int32_t* source, int64_t rows) {
  std::vector<int64_t> row_of(static_cast<size_t>(rows), -1);
  for (int64_t r = 0; r < rows; ++r) {
    if (source[r] < 0 || source[r] >= rows)
      invalid("source[" + std::to_string(r) + "] = " + std::to_string(source[r]) + " is outside [0, " +
              std::to_string(rows) + ")");
    if (row_of[source[r]] >= 0)
      invalid("source[" + std::to_string(r) + "] = " + std::to_string(source[r]) + " appears twice (source[" +
              std::to_string(row_of[source[r]]) + "] too)");
    row_of[source[r]] = r;
  }
  return row_of;
}

// Checks y_sorted [rows, dim], source [rows], weights [tokens, top_k] and a per-token tensor `per_token`
// [tokens, dim] against each other.
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
}

}  // namespace

moe_status cpu_moe_permute(moe_backend* be, const moe_tensor* x, const moe_tensor* ids, int32_t num_experts,
                           moe_tensor* x_sorted, moe_tensor* offsets, moe_tensor* source) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
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

    const int32_t* id = data_of<const int32_t>(ids);
    int64_t* off = data_of<int64_t>(offsets);
    std::vector<int64_t> next(static_cast<size_t>(num_experts) + 1, 0);
    for (int64_t f = 0; f < rows; ++f) {
      if (id[f] < 0 || id[f] >= num_experts)
        invalid("ids[" + std::to_string(f / top_k) + ", " + std::to_string(f % top_k) + "] = " + std::to_string(id[f]) +
                " is outside [0, num_experts = " + std::to_string(num_experts) + ")");
      ++next[id[f] + 1];
    }
    for (int32_t e = 0; e < num_experts; ++e) next[e + 1] += next[e];
    std::memcpy(off, next.data(), next.size() * sizeof(int64_t));
    // Destinations in flat-index order keep each expert's rows in token order.
    int32_t* src = data_of<int32_t>(source);
    for (int64_t f = 0; f < rows; ++f) src[next[id[f]]++] = static_cast<int32_t>(f);

    const float* xd = data_of<const float>(x);
    float* out = data_of<float>(x_sorted);
    parallel_ranges(backend, rows, kMinFloatsPerThread / (2 * dim + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        std::memcpy(out + r * dim, xd + (src[r] / top_k) * dim, dim * sizeof(float));
    });
  });
}

moe_status cpu_moe_unpermute(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                             const moe_tensor* weights, int32_t accumulate, moe_tensor* out) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_unpermute(y_sorted, source, weights, out, "out");
    const int64_t dim = y_sorted->shape[1], tokens = weights->shape[0], top_k = weights->shape[1];
    const std::vector<int64_t> row_of = invert_source(data_of<const int32_t>(source), y_sorted->shape[0]);

    const float* y = data_of<const float>(y_sorted);
    const float* w = data_of<const float>(weights);
    float* o = data_of<float>(out);
    const int64_t min_tokens = kMinFloatsPerThread / (dim * (top_k + 1) + 1) + 1;
    parallel_ranges(backend, tokens, min_tokens, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        float* orow = o + t * dim;
        if (!accumulate) std::memset(orow, 0, dim * sizeof(float));
        for (int64_t j = 0; j < top_k; ++j) {
          const float weight = w[t * top_k + j];
          const float* yrow = y + row_of[t * top_k + j] * dim;
#pragma omp simd
          for (int64_t c = 0; c < dim; ++c) orow[c] += weight * yrow[c];
        }
      }
    });
  });
}

moe_status cpu_moe_unpermute_backward(moe_backend* be, const moe_tensor* y_sorted, const moe_tensor* source,
                                      const moe_tensor* weights, const moe_tensor* dout, moe_tensor* dy_sorted,
                                      moe_tensor* dweights) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_unpermute(y_sorted, source, weights, dout, "dout");
    const int64_t rows = y_sorted->shape[0], dim = y_sorted->shape[1], top_k = weights->shape[1];
    if (check_tensor(dy_sorted, "dy_sorted", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dy_sorted " + shape_string(*dy_sorted) + " must have the shape of y_sorted " + shape_string(*y_sorted));
    if (dweights && check_tensor(dweights, "dweights", MOE_DTYPE_F32, -1) != rows)
      invalid("dweights " + shape_string(*dweights) + " must have the shape of weights " + shape_string(*weights));
    invert_source(data_of<const int32_t>(source), rows);  // only to check that source is a permutation
    const int32_t* src = data_of<const int32_t>(source);
    const float* y = data_of<const float>(y_sorted);
    const float* w = data_of<const float>(weights);
    const float* g = data_of<const float>(dout);
    float* dy = data_of<float>(dy_sorted);
    float* dw = dweights ? data_of<float>(dweights) : nullptr;
    parallel_ranges(backend, rows, kMinFloatsPerThread / (3 * dim + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t f = src[r];
        const float* grow = g + (f / top_k) * dim;
        const float weight = w[f];
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < dim; ++c) {
          dy[r * dim + c] = weight * grow[c];
          dot += y[r * dim + c] * grow[c];
        }
        if (dw) dw[f] = dot;
      }
    });
  });
}

}  // namespace moe_cpu
