// One AdamW step (torch.optim.AdamW) over a parameter tensor, elementwise; the bias corrections are
// computed once on the host in double, as the CPU backend does.
#include <cmath>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_math.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, float beta1, float beta2,
                             float eps, float decay, float step_size, float inv_root_correction) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_root_correction + eps);
  }
}

}  // namespace

moe_status cuda_adamw_update(moe_backend* be, moe_tensor* param, const moe_tensor* grad, moe_tensor* m, moe_tensor* v,
                             float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t n = check_tensor(param, "param", MOE_DTYPE_F32, -1);
    if (check_tensor(grad, "grad", MOE_DTYPE_F32, -1) != n || check_tensor(m, "m", MOE_DTYPE_F32, -1) != n ||
        check_tensor(v, "v", MOE_DTYPE_F32, -1) != n)
      invalid("param " + shape_string(*param) + ", grad " + shape_string(*grad) + ", m " + shape_string(*m) +
              " and v " + shape_string(*v) + " must have the same number of elements");
    if (step < 1) invalid("step=" + std::to_string(step) + " must be at least 1");
    if (n == 0) return;
    const float decay = 1.f - lr * weight_decay;
    const float step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step)));
    const float inv_root_correction =
        static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step)));
    adamw_kernel<<<grid_for(n), kThreads, 0, b.stream>>>(data_of<float>(param), data_of<const float>(grad),
                                                         data_of<float>(m), data_of<float>(v), n, beta1, beta2, eps,
                                                         decay, step_size, inv_root_correction);
    check_launch("adamw_kernel");
  });
}

}  // namespace moe_cuda
