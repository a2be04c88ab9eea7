// RMSNorm over rows (one block per row) and its backward pass.
#include <algorithm>
#include <cmath>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "device_math.cuh"
#include "tensor_checks.h"
#include "pdl_launch.cuh"
#include "rmsnorm.h"
#include "rmsnorm_device.cuh"

namespace moe_cuda {
namespace {

// y may be x: each element is read and then written by the same thread, after the row's sum is known.
__global__ void rmsnorm_rows(const float* x, const void* weight, bool bf16, float eps, int64_t width, float* y) {
  __shared__ double scratch[32];
  pdl_wait_and_release();
  const int64_t r = blockIdx.x;
  const float* xr = x + r * width;
  const float rstd = row_rstd(xr, width, eps, scratch);
  float* yr = y + r * width;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x) yr[j] = normed_value(xr[j], rstd, weight, bf16, j);
}

__global__ void rstd_rows(const float* x, float eps, int64_t width, float* rstd) {
  __shared__ double scratch[32];
  const float s = row_rstd(x + blockIdx.x * width, width, eps, scratch);
  if (threadIdx.x == 0) rstd[blockIdx.x] = s;
}

// Partial dweight sums over blocks of rows: partial[block][j] = sum over the block's rows of
// dy[r, j] * x[r, j] * rstd[r]. The partials are then added in block order (deterministic).
__global__ void rmsnorm_dweight_partials(const float* x, const float* dy, const float* rstd, int64_t rows,
                                         int64_t width, int64_t rows_per_block, float* partial) {
  const int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (j >= width) return;
  const int64_t r0 = blockIdx.y * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  float sum = 0.f;
  for (int64_t r = r0; r < r1; ++r) sum += dy[r * width + j] * x[r * width + j] * rstd[r];
  partial[blockIdx.y * width + j] = sum;
}

__global__ void add_partial_rows(const float* partial, int64_t blocks, int64_t width, float* dweight) {
  const int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (j >= width) return;
  float sum = 0.f;
  for (int64_t b = 0; b < blocks; ++b) sum += partial[b * width + j];
  dweight[j] += sum;
}

// dx = rstd*w*dy - x * rstd^3 * mean(x*w*dy); dx may be dy (each element is read before it is written, by
// the thread that writes it, and the row's mean is taken first).
__global__ void rmsnorm_dx(const float* x, const void* weight, bool bf16, const float* dy, const float* rstd,
                           int64_t width, float* dx) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * width;
  const float* dyr = dy + r * width;
  double dot = 0;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x)
    dot += static_cast<double>(xr[j]) * float_at(weight, bf16, j) * dyr[j];
  dot = block_sum(dot, scratch);
  const float s = rstd[r], correction = static_cast<float>(dot / static_cast<double>(width)) * s * s * s;
  float* dxr = dx + r * width;
  for (int64_t j = threadIdx.x; j < width; j += blockDim.x)
    dxr[j] = s * float_at(weight, bf16, j) * dyr[j] - xr[j] * correction;
}

}  // namespace

int64_t check_rmsnorm(const moe_tensor* x, const moe_tensor* weight, float eps, const moe_tensor* y) {
  const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
  const int64_t width = check_float_tensor(weight, "weight", 1);
  const int64_t ny = check_tensor(y, "y", MOE_DTYPE_F32, -1);
  if (x->ndim < 1 || x->shape[x->ndim - 1] != width || ny != n)
    invalid("x " + shape_string(*x) + ", weight " + shape_string(*weight) + " and y " + shape_string(*y) +
            " do not agree (x's last dimension must be the weight's length, y as many elements as x)");
  if (!(eps >= 0.f)) invalid("eps=" + std::to_string(eps) + " must be a non-negative number");
  return n;
}

moe_status cuda_rmsnorm(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, float eps, moe_tensor* y) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t n = check_rmsnorm(x, weight, eps, y);
    if (n == 0) return;
    const int64_t width = weight->shape[0], rows = n / width;
    if (rows > INT32_MAX) fail(MOE_ERR_UNSUPPORTED, "rmsnorm over more than 2^31 - 1 rows is not supported");
    launch_pdl(b, "rmsnorm_rows", rmsnorm_rows, static_cast<unsigned>(rows), kNormThreads, 0, data_of<const float>(x),
               weight->data, weight->dtype == MOE_DTYPE_BF16, eps, width, data_of<float>(y));
  });
}

moe_status cuda_rmsnorm_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* weight, const moe_tensor* dy,
                                 float eps, moe_tensor* dx, moe_tensor* dweight) {
  return guarded(be, [&](moe_backend& b) {
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
    if (rows > INT32_MAX) fail(MOE_ERR_UNSUPPORTED, "rmsnorm over more than 2^31 - 1 rows is not supported");
    const bool bf16 = weight->dtype == MOE_DTYPE_BF16;
    DeviceBuffer rstd(b, static_cast<size_t>(rows) * sizeof(float));
    rstd_rows<<<static_cast<unsigned>(rows), kNormThreads, 0, b.stream>>>(data_of<const float>(x), eps, width,
                                                                          rstd.as<float>());
    check_launch("rstd_rows");
    // dweight is taken from dy before dx, which may be dy, is written.
    if (dweight) {
      // Blocks of at least 64 rows, and few enough of them for the grid's y limit (65535).
      const int64_t rows_per_block = std::max<int64_t>(64, (rows + 65534) / 65535);
      const dim3 grid(static_cast<unsigned>((width + kThreads - 1) / kThreads),
                      static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block));
      DeviceBuffer partial(b, static_cast<size_t>(grid.y * width) * sizeof(float));
      rmsnorm_dweight_partials<<<grid, kThreads, 0, b.stream>>>(data_of<const float>(x), data_of<const float>(dy),
                                                                rstd.as<const float>(), rows, width, rows_per_block,
                                                                partial.as<float>());
      check_launch("rmsnorm_dweight_partials");
      add_partial_rows<<<grid.x, kThreads, 0, b.stream>>>(partial.as<const float>(), grid.y, width,
                                                         data_of<float>(dweight));
      check_launch("add_partial_rows");
    }
    rmsnorm_dx<<<static_cast<unsigned>(rows), kNormThreads, 0, b.stream>>>(data_of<const float>(x), weight->data, bf16,
                                                                           data_of<const float>(dy),
                                                                           rstd.as<const float>(), width,
                                                                           data_of<float>(dx));
    check_launch("rmsnorm_dx");
  });
}

}  // namespace moe_cuda
