// RMSNorm over rows (the row kernel is in kernels/norm_kernels.cpp) and its backward pass.
#include <cmath>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "bf16.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_rmsnorm(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, float eps, moe_tensor* y) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    const int64_t width = check_float_tensor(weight, "weight", 1);
    const int64_t ny = check_tensor(y, "y", MOE_DTYPE_F32, -1);
    if (x->ndim < 1 || x->shape[x->ndim - 1] != width || ny != n)
      invalid("x " + shape_string(*x) + ", weight " + shape_string(*weight) + " and y " + shape_string(*y) +
              " do not agree (x's last dimension must be the weight's length, y as many elements as x)");
    if (!(eps >= 0.f)) invalid("eps=" + std::to_string(eps) + " must be a non-negative number");
    if (n == 0) return;
    const float* xd = data_of<const float>(x);
    float* yd = data_of<float>(y);
    const int64_t rows = n / width;
    parallel_ranges(backend, rows, kMinFloatsPerThread / (2 * width + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        backend.kernels.rmsnorm_row(xd + r * width, weight->data, weight->dtype == MOE_DTYPE_BF16, eps, width,
                                    yd + r * width);
    });
  });
}

}  // namespace moe_cpu

namespace moe_cpu {

// dx = rstd*w*dy - x*rstd^3*mean(x*w*dy) per row; dweight += sum over rows of dy*x*rstd. dx may alias
// dy, so dweight is accumulated (from dy) before dx is written.
moe_status cpu_rmsnorm_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, const moe_tensor* dy,
                                float eps, moe_tensor* dx, moe_tensor* dweight) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    const int64_t width = check_float_tensor(weight, "weight", 1);
    if (x->ndim < 1 || x->shape[x->ndim - 1] != width || check_tensor(dy, "dy", MOE_DTYPE_F32, -1) != n ||
        check_tensor(dx, "dx", MOE_DTYPE_F32, -1) != n)
      invalid("x " + shape_string(*x) + ", weight " + shape_string(*weight) + ", dy " + shape_string(*dy) + " and dx " +
              shape_string(*dx) + " do not agree");
    if (dweight && check_tensor(dweight, "dweight", MOE_DTYPE_F32, -1) != width)
      invalid("dweight " + shape_string(*dweight) + " must have the weight's " + std::to_string(width) + " elements");
    if (n == 0) return;
    const int64_t rows = n / width;
    const float* xd = data_of<const float>(x);
    const float* dyd = data_of<const float>(dy);
    float* dxd = data_of<float>(dx);
    std::vector<float> w(static_cast<size_t>(width));
    for (int64_t j = 0; j < width; ++j) w[j] = float_at(weight->data, weight->dtype == MOE_DTYPE_BF16, j);
    // One pass over the rows; each worker sums its rows' dweight terms in its own row of partial
    // (in double, as the whole reduction was), added up after.
    const int64_t threads = team_threads(backend);
    std::vector<double> partial(dweight ? static_cast<size_t>(threads * width) : 0, 0.0);
    parallel_workers(backend, rows, kMinFloatsPerThread / (3 * width + 1) + 1, 1,
                     [&](int worker, int64_t begin, int64_t end) {
      double* dw = dweight ? partial.data() + worker * width : nullptr;
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = xd + r * width;
        const float* dyr = dyd + r * width;
        double squares = 0, dot = 0;
#pragma omp simd reduction(+ : squares, dot)
        for (int64_t j = 0; j < width; ++j) {
          squares += static_cast<double>(xr[j]) * xr[j];
          dot += static_cast<double>(xr[j]) * w[j] * dyr[j];
        }
        const float s = static_cast<float>(1.0 / std::sqrt(squares / width + eps));
        const float correction = static_cast<float>(dot / width) * s * s * s;
        if (dw) {  // before dx is written: dx may alias dy
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) dw[j] += static_cast<double>(dyr[j]) * xr[j] * s;
        }
        float* dxr = dxd + r * width;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) dxr[j] = s * w[j] * dyr[j] - xr[j] * correction;
      }
    });
    if (dweight) {
      float* dw = data_of<float>(dweight);
      for (int64_t j = 0; j < width; ++j) {
        double sum = 0;
        for (int64_t t = 0; t < threads; ++t) sum += partial[t * width + j];
        dw[j] += static_cast<float>(sum);
      }
    }
  });
}

}  // namespace moe_cpu
