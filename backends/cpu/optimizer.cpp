// The optimizer's elementwise ops: AdamW (torch.optim.AdamW), the sum of squares (gradient-norm
// clipping) and in-place scaling.
#include <cmath>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

constexpr int64_t kElementsPerThread = 1 << 15;

}  // namespace

moe_status cpu_adamw_update(moe_backend* be, moe_tensor* param, const moe_tensor* grad, moe_tensor* m, moe_tensor* v,
                            float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(param, "param", MOE_DTYPE_F32, -1);
    if (check_tensor(grad, "grad", MOE_DTYPE_F32, -1) != n || check_tensor(m, "m", MOE_DTYPE_F32, -1) != n ||
        check_tensor(v, "v", MOE_DTYPE_F32, -1) != n)
      invalid("param " + shape_string(*param) + ", grad " + shape_string(*grad) + ", m " + shape_string(*m) +
              " and v " + shape_string(*v) + " must have the same number of elements");
    if (step < 1) invalid("step=" + std::to_string(step) + " must be at least 1");
    float* p = data_of<float>(param);
    const float* g = data_of<const float>(grad);
    float* mm = data_of<float>(m);
    float* vv = data_of<float>(v);
    const float decay = 1.f - lr * weight_decay;
    const float step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step)));
    const float inv_root_correction =
        static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step)));
    parallel_ranges(backend, n, kElementsPerThread, 16, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        mm[i] = beta1 * mm[i] + (1.f - beta1) * g[i];
        vv[i] = beta2 * vv[i] + (1.f - beta2) * g[i] * g[i];
        p[i] = p[i] * decay - step_size * mm[i] / (std::sqrt(vv[i]) * inv_root_correction + eps);
      }
    });
  });
}

moe_status cpu_sum_squares(moe_backend* be, const moe_tensor* x, moe_tensor* out) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    if (check_tensor(out, "out", MOE_DTYPE_F32, -1) != 1)
      invalid("out " + shape_string(*out) + " must have one element");
    const float* xd = data_of<const float>(x);
    std::vector<double> partial(static_cast<size_t>(backend.threads), 0.0);
    parallel_workers(backend, n, kElementsPerThread, 16, [&](int worker, int64_t begin, int64_t end) {
      double sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = begin; i < end; ++i) sum += static_cast<double>(xd[i]) * xd[i];
      partial[worker] = sum;
    });
    double total = 0;
    for (double p : partial) total += p;
    *data_of<float>(out) = static_cast<float>(total);
  });
}

moe_status cpu_scale(moe_backend* be, moe_tensor* x, float alpha) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    float* xd = data_of<float>(x);
    parallel_ranges(backend, n, kElementsPerThread, 16, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) xd[i] *= alpha;
    });
  });
}

}  // namespace moe_cpu
