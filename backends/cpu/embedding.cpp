// Embedding gather (every id is checked before any row is written) and its backward pass.
#include <cstring>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_embedding(moe_backend* be, const moe_tensor* ids, const moe_tensor* table, moe_tensor* out) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t tokens = check_tensor(ids, "ids", MOE_DTYPE_I32, -1);
    check_float_tensor(table, "table", 2);
    const int64_t vocab = table->shape[0], dim = table->shape[1];
    if (check_tensor(out, "out", MOE_DTYPE_F32, -1) != tokens * dim)
      invalid("out " + shape_string(*out) + " must hold [tokens = " + std::to_string(tokens) + ", dim = " +
              std::to_string(dim) + "]");
    const int32_t* id = data_of<const int32_t>(ids);
    for (int64_t t = 0; t < tokens; ++t)
      if (id[t] < 0 || id[t] >= vocab)
        invalid("ids[" + std::to_string(t) + "] = " + std::to_string(id[t]) +
                " is outside the table's vocabulary [0, " + std::to_string(vocab) + ")");
    float* o = data_of<float>(out);
    const bool bf16 = table->dtype == MOE_DTYPE_BF16;
    parallel_ranges(backend, tokens, kMinFloatsPerThread / (2 * dim + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        if (bf16)
          backend.kernels.bf16_to_f32(data_of<const uint16_t>(table) + id[t] * dim, o + t * dim, dim);
        else
          std::memcpy(o + t * dim, data_of<const float>(table) + id[t] * dim, dim * sizeof(float));
      }
    });
  });
}

}  // namespace moe_cpu

namespace moe_cpu {

// dtable[ids[t]] += dout[t]. Tokens may share an id, so threads split the columns, not the tokens.
moe_status cpu_embedding_backward(moe_backend* be, const moe_tensor* ids, const moe_tensor* dout, moe_tensor* dtable) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t tokens = check_tensor(ids, "ids", MOE_DTYPE_I32, -1);
    check_tensor(dtable, "dtable", MOE_DTYPE_F32, 2);
    const int64_t vocab = dtable->shape[0], dim = dtable->shape[1];
    if (check_tensor(dout, "dout", MOE_DTYPE_F32, -1) != tokens * dim)
      invalid("dout " + shape_string(*dout) + " must hold [tokens = " + std::to_string(tokens) + ", dim = " +
              std::to_string(dim) + "]");
    const int32_t* id = data_of<const int32_t>(ids);
    for (int64_t t = 0; t < tokens; ++t)
      if (id[t] < 0 || id[t] >= vocab)
        invalid("ids[" + std::to_string(t) + "] = " + std::to_string(id[t]) +
                " is outside the table's vocabulary [0, " + std::to_string(vocab) + ")");
    const float* g = data_of<const float>(dout);
    float* table = data_of<float>(dtable);
    parallel_ranges(backend, dim, kMinFloatsPerThread / (2 * tokens + 1) + 16, 16, [&](int64_t begin, int64_t end) {
      for (int64_t t = 0; t < tokens; ++t) {
        float* row = table + id[t] * dim;
#pragma omp simd
        for (int64_t c = begin; c < end; ++c) row[c] += g[t * dim + c];
      }
    });
  });
}

}  // namespace moe_cpu
