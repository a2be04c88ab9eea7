// cross_entropy per row: loss = (1-s) (lse - l[label]) + s (lse - mean(l)) with lse = log sum exp(l),
// and dlogits = grad_scale * (softmax(l) - (1-s) onehot(label) - s/vocab). Every label is checked
// before anything is written; dlogits may alias logits (each row's statistics are taken first).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_cross_entropy(moe_backend* be, const moe_tensor* logits, const moe_tensor* labels, int32_t ignore_index,
                             float label_smoothing, float grad_scale, moe_tensor* loss, moe_tensor* dlogits) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
    const int64_t rows = logits->shape[0], vocab = logits->shape[1];
    if (check_tensor(labels, "labels", MOE_DTYPE_I32, -1) != rows ||
        check_tensor(loss, "loss", MOE_DTYPE_F32, -1) != rows)
      invalid("labels " + shape_string(*labels) + " and loss " + shape_string(*loss) +
              " must have one entry per row of " + "logits " + shape_string(*logits));
    if (dlogits && check_tensor(dlogits, "dlogits", MOE_DTYPE_F32, -1) != rows * vocab)
      invalid("dlogits " + shape_string(*dlogits) + " must have the shape of logits " + shape_string(*logits));
    if (!(label_smoothing >= 0.f && label_smoothing <= 1.f))
      invalid("label_smoothing=" + std::to_string(label_smoothing) + " is outside [0, 1]");
    if (rows > 0 && vocab < 1) invalid("logits " + shape_string(*logits) + " has no classes");
    const int32_t* label = data_of<const int32_t>(labels);
    for (int64_t r = 0; r < rows; ++r)
      if (label[r] != ignore_index && (label[r] < 0 || label[r] >= vocab))
        invalid("labels[" + std::to_string(r) + "] = " + std::to_string(label[r]) + " is outside [0, vocab = " +
                std::to_string(vocab) + ") and is not ignore_index (" + std::to_string(ignore_index) + ")");

    const float* l = data_of<const float>(logits);
    float* out_loss = data_of<float>(loss);
    float* dl = dlogits ? data_of<float>(dlogits) : nullptr;
    // Without dlogits the exponentials still need a place: one row per worker.
    std::vector<float> scratch(dl ? 0 : static_cast<size_t>(vocab * backend.threads));
    const double s = label_smoothing;
    const int64_t min_rows = kMinFloatsPerThread / (4 * vocab + 1) + 1;
    parallel_workers(backend, rows, min_rows, 1, [&](int worker, int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* row = l + r * vocab;
        float* grad = dl ? dl + r * vocab : nullptr;
        if (label[r] == ignore_index) {
          out_loss[r] = 0.f;
          if (grad)
            for (int64_t v = 0; v < vocab; ++v) grad[v] = 0.f;
          continue;
        }
        float largest = row[0];
#pragma omp simd reduction(max : largest)
        for (int64_t v = 0; v < vocab; ++v) largest = std::max(largest, row[v]);
        double total = 0;  // only label smoothing needs the mean logit
        if (s != 0) {
#pragma omp simd reduction(+ : total)
          for (int64_t v = 0; v < vocab; ++v) total += row[v];
        }
        const double picked = row[label[r]];
        float* exps = grad ? grad : scratch.data() + worker * vocab;
        const double sum = backend.kernels.exp_shifted_sum(row, largest, exps, vocab);
        const double lse = largest + std::log(sum);
        out_loss[r] = static_cast<float>((1 - s) * (lse - picked) + s * (lse - total / vocab));
        if (grad) {
          const float inv = static_cast<float>(grad_scale / sum), smooth = static_cast<float>(grad_scale * s / vocab);
#pragma omp simd
          for (int64_t v = 0; v < vocab; ++v) grad[v] = grad[v] * inv - smooth;
          grad[label[r]] -= static_cast<float>(grad_scale * (1 - s));
        }
      }
    });
  });
}

}  // namespace moe_cpu
