// Embedding gather (every id is checked before any row is written; while a step is recorded, the
// kernel checks them on the device instead, device_index_checks.h) and its backward pass.
#include <algorithm>
#include <string>
#include <vector>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "index_checks.h"
#include "tensor_checks.h"
#include "pdl_launch.cuh"

namespace moe_cuda {
namespace {

// `errors` is set while recording (the ids were not checked on the host): a bad id's row is skipped.
template <typename T>
__global__ void gather_rows(const int32_t* ids, const T* table, int64_t vocab, int64_t dim, int64_t n, float* out,
                            IndexError* errors) {
  pdl_wait_and_release();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / dim, id = ids[t];
    if (errors && !index_ok(errors, IndexCheck::kEmbeddingIds, t, -1, id, 0, vocab - 1)) continue;
    out[i] = to_float(table[id * dim + i % dim]);
  }
}

// Tokens may share an id. Each id's tokens (in token order) are summed by one thread per column, then
// added to its row once: no atomics, so the result is the same on every run (bit-exact training resume).
__global__ void add_rows_by_id(const int32_t* unique_ids, const int32_t* starts, const int32_t* tokens,
                               const float* dout, int64_t dim, float* dtable) {
  const int64_t c = blockIdx.y * int64_t{blockDim.x} + threadIdx.x;
  if (c >= dim) return;
  const int64_t u = blockIdx.x;
  float sum = 0.f;
  for (int32_t i = starts[u]; i < starts[u + 1]; ++i) sum += dout[int64_t{tokens[i]} * dim + c];
  dtable[int64_t{unique_ids[u]} * dim + c] += sum;
}

}  // namespace

moe_status cuda_embedding(moe_backend* be, const moe_tensor* ids, const moe_tensor* table, moe_tensor* out) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t tokens = check_tensor(ids, "ids", MOE_DTYPE_I32, -1);
    check_float_tensor(table, "table", 2);
    const int64_t vocab = table->shape[0], dim = table->shape[1];
    if (check_tensor(out, "out", MOE_DTYPE_F32, -1) != tokens * dim)
      invalid("out " + shape_string(*out) + " must hold [tokens = " + std::to_string(tokens) + ", dim = " +
              std::to_string(dim) + "]");
    IndexError* errors = recording(b) ? device_index_errors(b) : nullptr;
    if (!errors) token_indices(b, ids, "ids", tokens, 0, vocab - 1);
    const int64_t n = tokens * dim;
    if (n == 0) return;
    if (table->dtype == MOE_DTYPE_BF16)
      launch_pdl(b, "gather_rows", gather_rows<__nv_bfloat16>, grid_for(n), kThreads, 0, data_of<const int32_t>(ids),
                 data_of<const __nv_bfloat16>(table), vocab, dim, n, data_of<float>(out), errors);
    else
      launch_pdl(b, "gather_rows", gather_rows<float>, grid_for(n), kThreads, 0, data_of<const int32_t>(ids),
                 data_of<const float>(table), vocab, dim, n, data_of<float>(out), errors);
  });
}

moe_status cuda_embedding_backward(moe_backend* be, const moe_tensor* ids, const moe_tensor* dout,
                                   moe_tensor* dtable) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t tokens = check_tensor(ids, "ids", MOE_DTYPE_I32, -1);
    check_tensor(dtable, "dtable", MOE_DTYPE_F32, 2);
    const int64_t vocab = dtable->shape[0], dim = dtable->shape[1];
    if (check_tensor(dout, "dout", MOE_DTYPE_F32, -1) != tokens * dim)
      invalid("dout " + shape_string(*dout) + " must hold [tokens = " + std::to_string(tokens) + ", dim = " +
              std::to_string(dim) + "]");
    const std::vector<int32_t> id = token_indices(b, ids, "ids", tokens, 0, vocab - 1);
    if (tokens == 0 || dim == 0) return;
    if (tokens > INT32_MAX) fail(MOE_ERR_UNSUPPORTED, "embedding_backward over more than 2^31 - 1 tokens");
    // The tokens of each distinct id, in token order (a stable sort of the token indices by id).
    std::vector<int32_t> order(static_cast<size_t>(tokens));
    for (int64_t t = 0; t < tokens; ++t) order[t] = static_cast<int32_t>(t);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return id[a] < id[c]; });
    std::vector<int32_t> unique_ids, starts;
    for (int64_t i = 0; i < tokens; ++i)
      if (i == 0 || id[order[i]] != id[order[i - 1]]) {
        unique_ids.push_back(id[order[i]]);
        starts.push_back(static_cast<int32_t>(i));
      }
    starts.push_back(static_cast<int32_t>(tokens));
    const DeviceBuffer d_unique = upload_vector(b, unique_ids), d_starts = upload_vector(b, starts),
                       d_order = upload_vector(b, order);
    const dim3 grid(static_cast<unsigned>(unique_ids.size()), static_cast<unsigned>((dim + kThreads - 1) / kThreads));
    add_rows_by_id<<<grid, kThreads, 0, b.stream>>>(d_unique.as<const int32_t>(), d_starts.as<const int32_t>(),
                                                    d_order.as<const int32_t>(), data_of<const float>(dout), dim,
                                                    data_of<float>(dtable));
    check_launch("add_rows_by_id");
  });
}

}  // namespace moe_cuda
