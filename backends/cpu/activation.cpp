// gated_act: y = act(gate) * up over rows of the fused gate|up projection (kernels in
// kernels/activation_kernels.cpp), and its backward pass.
#include <string>

#include "activation.h"
#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {

void check_activation(int32_t activation) {
  if (activation != MOE_ACT_SILU && activation != MOE_ACT_GELU_TANH)
    invalid("activation " + std::to_string(activation) + " is neither MOE_ACT_SILU (1) nor MOE_ACT_GELU_TANH (2)");
}

moe_status cpu_gated_act(moe_backend* be, const moe_tensor* x, int32_t activation, moe_tensor* y) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_tensor(y, "y", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], width = x->shape[1] / 2;
    if (x->shape[1] % 2 || y->shape[0] != rows || y->shape[1] != width)
      invalid("x " + shape_string(*x) + " must be [rows, 2 * width] and y " + shape_string(*y) + " [rows, width]");
    check_activation(activation);
    const float* xd = data_of<const float>(x);
    float* yd = data_of<float>(y);
    parallel_ranges(backend, rows, kMinFloatsPerThread / (3 * width + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        backend.kernels.gated_act_row(xd + r * 2 * width, yd + r * width, width, activation);
    });
  });
}

}  // namespace moe_cpu

namespace moe_cpu {

// y = act(g) * u  =>  dg = dy * u * act'(g), du = dy * act(g).
moe_status cpu_gated_act_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* dy, int32_t activation,
                                  moe_tensor* dx) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_tensor(dy, "dy", MOE_DTYPE_F32, 2);
    check_tensor(dx, "dx", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], width = x->shape[1] / 2;
    if (x->shape[1] % 2 || dy->shape[0] != rows || dy->shape[1] != width || dx->shape[0] != rows ||
        dx->shape[1] != 2 * width)
      invalid("x " + shape_string(*x) + " and dx " + shape_string(*dx) + " must be [rows, 2 * width] and dy " +
              shape_string(*dy) + " [rows, width]");
    check_activation(activation);
    const float* xd = data_of<const float>(x);
    const float* dyd = data_of<const float>(dy);
    float* dxd = data_of<float>(dx);
    parallel_ranges(backend, rows, kMinFloatsPerThread / (4 * width + 1) + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        backend.kernels.gated_act_backward_row(xd + r * 2 * width, dyd + r * width, width, activation,
                                               dxd + r * 2 * width);
    });
  });
}

}  // namespace moe_cpu
