// gated_act: y = act(gate) * up over rows of the fused gate|up projection, and its backward pass
// (y = act(g) * u  =>  dg = dy * u * act'(g), du = dy * act(g)).
#include <string>

#include "activation.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "device_math.cuh"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

template <typename In, typename Out>
__global__ void gated_act_kernel(const In* h, int64_t h_ld, Out* a, int64_t a_ld, int64_t rows, int64_t width,
                                 int32_t act) {
  const int64_t n = rows * width;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / width, j = i % width;
    const float g = to_float(h[r * h_ld + j]), u = to_float(h[r * h_ld + width + j]);
    a[r * a_ld + j] = from_float<Out>(activation(g, act) * u);
  }
}

// Each thread reads its gate and up values before writing their gradients, so dh may be h.
template <typename T>
__global__ void gated_act_backward_kernel(const T* h, int64_t h_ld, const T* da, int64_t da_ld, T* dh, int64_t dh_ld,
                                          int64_t rows, int64_t width, int32_t act) {
  const int64_t n = rows * width;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / width, j = i % width;
    const float g = to_float(h[r * h_ld + j]), u = to_float(h[r * h_ld + width + j]);
    const float d = to_float(da[r * da_ld + j]);
    dh[r * dh_ld + j] = from_float<T>(d * u * activation_derivative(g, act));
    dh[r * dh_ld + width + j] = from_float<T>(d * activation(g, act));
  }
}

}  // namespace

void check_activation(int32_t activation) {
  if (activation != MOE_ACT_SILU && activation != MOE_ACT_GELU_TANH)
    invalid("activation " + std::to_string(activation) + " is neither MOE_ACT_SILU (1) nor MOE_ACT_GELU_TANH (2)");
}

void gated_act_rows(moe_backend& be, const void* h, moe_dtype h_type, int64_t h_ld, void* a, moe_dtype a_type,
                    int64_t a_ld, int64_t rows, int64_t width, int32_t activation) {
  const int64_t n = rows * width;
  if (n == 0) return;
  const unsigned grid = grid_for(n);
  using bf16 = __nv_bfloat16;
  if (h_type == MOE_DTYPE_BF16 && a_type == MOE_DTYPE_BF16)
    gated_act_kernel<<<grid, kThreads, 0, be.stream>>>(static_cast<const bf16*>(h), h_ld, static_cast<bf16*>(a), a_ld,
                                                       rows, width, activation);
  else if (h_type == MOE_DTYPE_BF16)
    gated_act_kernel<<<grid, kThreads, 0, be.stream>>>(static_cast<const bf16*>(h), h_ld, static_cast<float*>(a),
                                                       a_ld, rows, width, activation);
  else if (a_type == MOE_DTYPE_BF16)
    gated_act_kernel<<<grid, kThreads, 0, be.stream>>>(static_cast<const float*>(h), h_ld, static_cast<bf16*>(a),
                                                       a_ld, rows, width, activation);
  else
    gated_act_kernel<<<grid, kThreads, 0, be.stream>>>(static_cast<const float*>(h), h_ld, static_cast<float*>(a),
                                                       a_ld, rows, width, activation);
  check_launch("gated_act_kernel");
}

void gated_act_backward_rows(moe_backend& be, const void* h, int64_t h_ld, const void* da, int64_t da_ld, void* dh,
                             int64_t dh_ld, moe_dtype type, int64_t rows, int64_t width, int32_t activation) {
  const int64_t n = rows * width;
  if (n == 0) return;
  if (type == MOE_DTYPE_BF16) {
    using bf16 = __nv_bfloat16;
    gated_act_backward_kernel<<<grid_for(n), kThreads, 0, be.stream>>>(static_cast<const bf16*>(h), h_ld,
                                                                       static_cast<const bf16*>(da), da_ld,
                                                                       static_cast<bf16*>(dh), dh_ld, rows, width,
                                                                       activation);
  } else {
    gated_act_backward_kernel<<<grid_for(n), kThreads, 0, be.stream>>>(static_cast<const float*>(h), h_ld,
                                                                       static_cast<const float*>(da), da_ld,
                                                                       static_cast<float*>(dh), dh_ld, rows, width,
                                                                       activation);
  }
  check_launch("gated_act_backward_kernel");
}

moe_status cuda_gated_act(moe_backend* be, const moe_tensor* x, int32_t activation, moe_tensor* y) {
  return guarded(be, [&](moe_backend& b) {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_tensor(y, "y", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], width = x->shape[1] / 2;
    if (x->shape[1] % 2 || y->shape[0] != rows || y->shape[1] != width)
      invalid("x " + shape_string(*x) + " must be [rows, 2 * width] and y " + shape_string(*y) + " [rows, width]");
    check_activation(activation);
    gated_act_rows(b, x->data, MOE_DTYPE_F32, 2 * width, y->data, MOE_DTYPE_F32, width, rows, width, activation);
  });
}

moe_status cuda_gated_act_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* dy, int32_t activation,
                                   moe_tensor* dx) {
  return guarded(be, [&](moe_backend& b) {
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_tensor(dy, "dy", MOE_DTYPE_F32, 2);
    check_tensor(dx, "dx", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], width = x->shape[1] / 2;
    if (x->shape[1] % 2 || dy->shape[0] != rows || dy->shape[1] != width || dx->shape[0] != rows ||
        dx->shape[1] != 2 * width)
      invalid("x " + shape_string(*x) + " and dx " + shape_string(*dx) + " must be [rows, 2 * width] and dy " +
              shape_string(*dy) + " [rows, width]");
    check_activation(activation);
    gated_act_backward_rows(b, x->data, 2 * width, dy->data, width, dx->data, 2 * width, MOE_DTYPE_F32, rows, width,
                            activation);
  });
}

}  // namespace moe_cuda
