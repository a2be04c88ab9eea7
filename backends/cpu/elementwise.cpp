// add and copy_2d: memory-bound loops split over the backend's threads.
#include <cstring>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_add(moe_backend* be, const moe_tensor* a, const moe_tensor* b, moe_tensor* y) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(a, "a", MOE_DTYPE_F32, -1);
    if (check_tensor(b, "b", MOE_DTYPE_F32, -1) != n || check_tensor(y, "y", MOE_DTYPE_F32, -1) != n)
      invalid("a " + shape_string(*a) + ", b " + shape_string(*b) + " and y " + shape_string(*y) +
              " must have the same number of elements");
    const float* ad = data_of<const float>(a);
    const float* bd = data_of<const float>(b);
    float* yd = data_of<float>(y);
    // y may alias a or b: each element is read before it is written, at the same index.
    parallel_ranges(backend, n, kMinFloatsPerThread, 16, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) yd[i] = ad[i] + bd[i];
    });
  });
}

moe_status cpu_copy_2d(moe_backend* be, float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                       int64_t rows, int64_t cols) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    if (rows < 0 || cols < 0)
      invalid("rows=" + std::to_string(rows) + " and cols=" + std::to_string(cols) + " must not be negative");
    if (dst_stride < cols || src_stride < cols)
      invalid("strides dst=" + std::to_string(dst_stride) + ", src=" + std::to_string(src_stride) +
              " must be at least cols=" + std::to_string(cols));
    if (rows == 0 || cols == 0) return;
    check_pointer(dst, "dst");
    check_pointer(src, "src");
    parallel_ranges(backend, rows, kMinFloatsPerThread / cols + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        std::memcpy(dst + r * dst_stride, src + r * src_stride, cols * sizeof(float));
    });
  });
}

}  // namespace moe_cpu
