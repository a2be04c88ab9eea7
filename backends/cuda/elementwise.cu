// add, copy_2d, scale and sum_squares: memory-bound loops.
#include <algorithm>
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "device_math.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

// y may be a or b: each element is read before it is written, at the same index.
__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    x[i] *= alpha;
}

// The sum of squares in two deterministic stages: a fixed number of blocks (set by n alone) each write a
// partial sum in double, then one block adds the partials in a fixed order. Same input, same bits: the
// gradient norm, and with it clipping, must not vary from run to run (bit-exact training resume).
constexpr unsigned kMaxPartials = 1024;

__global__ void sum_squares_partials(const float* x, int64_t n, double* partials) {
  __shared__ double scratch[32];
  double sum = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    sum += static_cast<double>(x[i]) * x[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void add_partials(const double* partials, unsigned count, float* out) {
  __shared__ double scratch[32];
  double sum = 0;
  for (unsigned i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *out = static_cast<float>(sum);
}

}  // namespace

moe_status cuda_add(moe_backend* be, const moe_tensor* a, const moe_tensor* b, moe_tensor* y) {
  return guarded(be, [&](moe_backend& backend) {
    const int64_t n = check_tensor(a, "a", MOE_DTYPE_F32, -1);
    if (check_tensor(b, "b", MOE_DTYPE_F32, -1) != n || check_tensor(y, "y", MOE_DTYPE_F32, -1) != n)
      invalid("a " + shape_string(*a) + ", b " + shape_string(*b) + " and y " + shape_string(*y) +
              " must have the same number of elements");
    if (n == 0) return;
    add_kernel<<<grid_for(n), kThreads, 0, backend.stream>>>(data_of<const float>(a), data_of<const float>(b),
                                                             data_of<float>(y), n);
    check_launch("add_kernel");
  });
}

moe_status cuda_copy_2d(moe_backend* be, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                        int64_t rows, int64_t cols) {
  return guarded(be, [&](moe_backend& b) {
    if (rows < 0 || cols < 0)
      invalid("rows=" + std::to_string(rows) + " and cols=" + std::to_string(cols) + " must not be negative");
    if (dst_stride < cols || src_stride < cols)
      invalid("strides dst=" + std::to_string(dst_stride) + ", src=" + std::to_string(src_stride) +
              " must be at least cols=" + std::to_string(cols));
    if (rows == 0 || cols == 0) return;
    check_pointer(dst, "dst");
    check_pointer(src, "src");
    check_cuda(cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float),
                                 cols * sizeof(float), rows, cudaMemcpyDeviceToDevice, b.stream),
               "cudaMemcpy2DAsync");
  });
}

moe_status cuda_scale(moe_backend* be, moe_tensor* x, float alpha) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    if (n == 0) return;
    scale_kernel<<<grid_for(n), kThreads, 0, b.stream>>>(data_of<float>(x), alpha, n);
    check_launch("scale_kernel");
  });
}

moe_status cuda_sum_squares(moe_backend* be, const moe_tensor* x, moe_tensor* out) {
  return guarded(be, [&](moe_backend& b) {
    const int64_t n = check_tensor(x, "x", MOE_DTYPE_F32, -1);
    if (check_tensor(out, "out", MOE_DTYPE_F32, -1) != 1)
      invalid("out " + shape_string(*out) + " must have one element");
    const unsigned blocks = n > 0 ? std::min(grid_for(n), kMaxPartials) : 1;
    DeviceBuffer partials(b, blocks * sizeof(double));
    sum_squares_partials<<<blocks, kThreads, 0, b.stream>>>(data_of<const float>(x), n, partials.as<double>());
    check_launch("sum_squares_partials");
    add_partials<<<1, kThreads, 0, b.stream>>>(partials.as<const double>(), blocks, data_of<float>(out));
    check_launch("add_partials");
  });
}

}  // namespace moe_cuda
