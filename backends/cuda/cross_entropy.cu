// cross_entropy per row (one block per row): loss = (1-s) (lse - l[label]) + s (lse - mean(l)) with
// lse = log sum exp(l), and dlogits = grad_scale * (softmax(l) - (1-s) onehot(label) - s/vocab). Every
// label is checked before anything is written; dlogits may alias logits (each row's statistics are
// taken before any of its elements is written, and each element is then read and written by one thread).
#include <string>
#include <vector>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_math.cuh"
#include "device_buffer.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

constexpr int kRowThreads = 512;

__global__ void __launch_bounds__(kRowThreads)
    cross_entropy_rows(const float* logits, const int32_t* labels, int64_t vocab, int32_t ignore_index,
                       float smoothing, float grad_scale, float* loss, float* dlogits) {
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  const int64_t r = blockIdx.x;
  const float* row = logits + r * vocab;
  float* grad = dlogits ? dlogits + r * vocab : nullptr;
  const int32_t label = labels[r];
  if (label == ignore_index) {
    if (threadIdx.x == 0) loss[r] = 0.f;
    if (grad)
      for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) grad[v] = 0.f;
    return;
  }
  float largest = -INFINITY;
  double total = 0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    largest = fmaxf(largest, row[v]);
    total += row[v];
  }
  largest = block_max(largest, fscratch);
  total = block_sum(total, dscratch);
  double sum = 0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) sum += expf(row[v] - largest);
  sum = block_sum(sum, dscratch);
  const double s = smoothing, lse = largest + log(sum);
  if (threadIdx.x == 0)
    loss[r] = static_cast<float>((1 - s) * (lse - row[label]) + s * (lse - total / static_cast<double>(vocab)));
  if (!grad) return;
  // Every thread has read what it needs of the row (the sums are complete) before any element is written.
  __syncthreads();
  const float inv = static_cast<float>(grad_scale / sum);
  const float smooth = static_cast<float>(grad_scale * s / static_cast<double>(vocab));
  const float hit = static_cast<float>(grad_scale * (1 - s));
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    grad[v] = expf(row[v] - largest) * inv - smooth - (v == label ? hit : 0.f);
}

}  // namespace

moe_status cuda_cross_entropy(moe_backend* be, const moe_tensor* logits, const moe_tensor* labels,
                              int32_t ignore_index, float label_smoothing, float grad_scale, moe_tensor* loss,
                              moe_tensor* dlogits) {
  return guarded(be, [&](moe_backend& b) {
    check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
    const int64_t rows = logits->shape[0], vocab = logits->shape[1];
    if (check_tensor(labels, "labels", MOE_DTYPE_I32, -1) != rows ||
        check_tensor(loss, "loss", MOE_DTYPE_F32, -1) != rows)
      invalid("labels " + shape_string(*labels) + " and loss " + shape_string(*loss) +
              " must have one entry per row of logits " + shape_string(*logits));
    if (dlogits && check_tensor(dlogits, "dlogits", MOE_DTYPE_F32, -1) != rows * vocab)
      invalid("dlogits " + shape_string(*dlogits) + " must have the shape of logits " + shape_string(*logits));
    if (!(label_smoothing >= 0.f && label_smoothing <= 1.f))
      invalid("label_smoothing=" + std::to_string(label_smoothing) + " is outside [0, 1]");
    if (rows > 0 && vocab < 1) invalid("logits " + shape_string(*logits) + " has no classes");
    if (rows > INT32_MAX) fail(MOE_ERR_UNSUPPORTED, "cross_entropy over more than 2^31 - 1 rows is not supported");
    const std::vector<int32_t> label = download_vector<int32_t>(b, labels->data, rows);
    for (int64_t r = 0; r < rows; ++r)
      if (label[r] != ignore_index && (label[r] < 0 || label[r] >= vocab))
        invalid("labels[" + std::to_string(r) + "] = " + std::to_string(label[r]) + " is outside [0, vocab = " +
                std::to_string(vocab) + ") and is not ignore_index (" + std::to_string(ignore_index) + ")");
    if (rows == 0) return;
    cross_entropy_rows<<<static_cast<unsigned>(rows), kRowThreads, 0, b.stream>>>(
        data_of<const float>(logits), data_of<const int32_t>(labels), vocab, ignore_index, label_smoothing,
        grad_scale, data_of<float>(loss), dlogits ? data_of<float>(dlogits) : nullptr);
    check_launch("cross_entropy_rows");
  });
}

}  // namespace moe_cuda
