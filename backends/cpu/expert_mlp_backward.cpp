// expert_mlp_backward: per expert with rows X [m, dim], weights W1 = gate_up[e] [2F, dim] and
// W2 = down[e] [dim, F], and upstream dY [m, dim], the forward pass is recomputed (H = X W1^T,
// A = act(G) * U) and
//   ddown[e] += dY^T A,   dA = dY W2,   dH = gated_act_backward(H, dA),
//   dgate_up[e] += dH^T X,   dX = dH W1.
// The rows are padded with zero rows to a bucket size (row_buckets.h), which keeps the matmul
// primitives few (the row count is M of some products and K of the weight gradients) and adds
// nothing to any gradient.
#include <cstring>
#include <string>

#include "activation.h"
#include "backend_ops.h"
#include "errors.h"
#include "gemm.h"
#include "parallel.h"
#include "expert_schedule.h"
#include "row_buckets.h"
#include "tensor_checks.h"
#include "thread_scratch.h"

namespace moe_cpu {
namespace {

struct ExpertGradients {
  float* dx;        // [m, dim] of this expert's rows, or null
  float* dgate_up;  // [2F, dim], or null
  float* ddown;     // [dim, F], or null
};

void expert_backward(moe_backend& be, int64_t m, int64_t dim, int64_t width, const float* x, const float* dy,
                     const void* w_gate_up, const void* w_down, moe_dtype wtype, int32_t activation,
                     const ExpertGradients& out) {
  const int64_t rows = m <= gemv_max_rows(wtype) ? m : round_rows_up(m);
  const int64_t f2 = 2 * width;
  // One scratch block for every intermediate: padded X and dY, H, A, dA and dH. It is the calling
  // thread's and reused across calls (a fresh zeroed allocation per expert cost more in page faults
  // and clearing than the products). Only the padding rows of X and dY need zeros: the products
  // and the activation write every row of H, A, dA and dH.
  float* xp = thread_scratch_as<float>(ScratchSlot::kExpertBackward,
                                       static_cast<size_t>(rows * (2 * dim + 2 * f2 + 2 * width)));
  float* dyp = xp + rows * dim;
  float* h = dyp + rows * dim;
  float* a = h + rows * f2;
  float* da = a + rows * width;
  float* dh = da + rows * width;
  std::memcpy(xp, x, m * dim * sizeof(float));
  std::memcpy(dyp, dy, m * dim * sizeof(float));
  std::memset(xp + m * dim, 0, (rows - m) * dim * sizeof(float));
  std::memset(dyp + m * dim, 0, (rows - m) * dim * sizeof(float));

  gemm(be, false, true, rows, f2, dim, 1.f, xp, MOE_DTYPE_F32, dim, w_gate_up, wtype, dim, 0.f, h, f2);
  for (int64_t r = 0; r < rows; ++r) be.kernels.gated_act_row(h + r * f2, a + r * width, width, activation);
  if (out.ddown)  // [dim, F] += dY^T [dim, rows] . A [rows, F]
    gemm(be, true, false, dim, width, rows, 1.f, dyp, MOE_DTYPE_F32, dim, a, MOE_DTYPE_F32, width, 1.f, out.ddown,
         width);
  if (!out.dx && !out.dgate_up) return;
  gemm(be, false, false, rows, width, dim, 1.f, dyp, MOE_DTYPE_F32, dim, w_down, wtype, width, 0.f, da, width);
  parallel_ranges(be, rows, kMinFloatsPerThread / (4 * width + 1) + 1, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      be.kernels.gated_act_backward_row(h + r * f2, da + r * width, width, activation, dh + r * f2);
  });
  if (out.dgate_up)  // [2F, dim] += dH^T [2F, rows] . X [rows, dim]
    gemm(be, true, false, f2, dim, rows, 1.f, dh, MOE_DTYPE_F32, f2, xp, MOE_DTYPE_F32, dim, 1.f, out.dgate_up, dim);
  if (out.dx) {
    // dX through a padded block, then only the expert's m rows are copied out.
    gemm(be, false, false, rows, dim, f2, 1.f, dh, MOE_DTYPE_F32, f2, w_gate_up, wtype, dim, 0.f, dyp, dim);
    std::memcpy(out.dx, dyp, m * dim * sizeof(float));
  }
}

}  // namespace

moe_status cpu_expert_mlp_backward(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets,
                                   const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                   const moe_tensor* dy, moe_tensor* dx, moe_tensor* dgate_up, moe_tensor* ddown) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    check_float_tensor(gate_up, "gate_up", 3);
    check_float_tensor(down, "down", 3);
    check_activation(activation);
    const int64_t rows = x->shape[0], dim = x->shape[1];
    const int64_t experts = gate_up->shape[0], width = gate_up->shape[1] / 2;
    if (down->dtype != gate_up->dtype)
      fail(MOE_ERR_UNSUPPORTED, std::string("gate_up is ") + dtype_name(gate_up->dtype) + " but down is " +
                                    dtype_name(down->dtype) + ": the experts' weights must share one dtype");
    if (gate_up->shape[1] % 2 || gate_up->shape[2] != dim || down->shape[0] != experts || down->shape[1] != dim ||
        down->shape[2] != width)
      invalid("gate_up " + shape_string(*gate_up) + " must be [experts, 2F, dim] and down " + shape_string(*down) +
              " [experts, dim, F] for x " + shape_string(*x));
    if (check_tensor(dy, "dy", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dy " + shape_string(*dy) + " must have the shape of x " + shape_string(*x));
    if (dx && check_tensor(dx, "dx", MOE_DTYPE_F32, -1) != rows * dim)
      invalid("dx " + shape_string(*dx) + " must have the shape of x " + shape_string(*x));
    if (dgate_up && check_tensor(dgate_up, "dgate_up", MOE_DTYPE_F32, -1) != experts * 2 * width * dim)
      invalid("dgate_up " + shape_string(*dgate_up) + " must have the shape of gate_up " + shape_string(*gate_up));
    if (ddown && check_tensor(ddown, "ddown", MOE_DTYPE_F32, -1) != experts * dim * width)
      invalid("ddown " + shape_string(*ddown) + " must have the shape of down " + shape_string(*down));
    if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != experts + 1)
      invalid("offsets " + shape_string(*offsets) + " must have experts + 1 = " + std::to_string(experts + 1) +
              " entries");
    const int64_t* off = data_of<const int64_t>(offsets);
    for (int64_t e = 0; e <= experts; ++e)
      if (off[e] < (e ? off[e - 1] : 0) || off[e] > rows)
        invalid("offsets[" + std::to_string(e) + "] = " + std::to_string(off[e]) +
                " breaks 0 <= offsets[0] <= ... <= offsets[experts] <= rows = " + std::to_string(rows));

    float* dxd = dx ? data_of<float>(dx) : nullptr;
    if (dxd) {  // rows outside every expert's block do not reach the output
      std::memset(dxd, 0, off[0] * dim * sizeof(float));
      std::memset(dxd + off[experts] * dim, 0, (rows - off[experts]) * dim * sizeof(float));
    }
    if (width == 0 || dim == 0) {
      if (dxd) std::memset(dxd, 0, rows * dim * sizeof(float));
      return;
    }
    const size_t welem = gate_up->dtype == MOE_DTYPE_BF16 ? 2 : 4;
    auto run_expert = [&](int64_t e) {
      const int64_t m = off[e + 1] - off[e];
      const ExpertGradients grads{dxd ? dxd + off[e] * dim : nullptr,
                                  dgate_up ? data_of<float>(dgate_up) + e * 2 * width * dim : nullptr,
                                  ddown ? data_of<float>(ddown) + e * dim * width : nullptr};
      expert_backward(backend, m, dim, width, data_of<const float>(x) + off[e] * dim,
                      data_of<const float>(dy) + off[e] * dim,
                      static_cast<const char*>(gate_up->data) + static_cast<size_t>(e * 2 * width * dim) * welem,
                      static_cast<const char*>(down->data) + static_cast<size_t>(e * dim * width) * welem,
                      gate_up->dtype, activation, grads);
    };
    // Each expert writes only its own weight gradients and dx rows, so experts can run side by side.
    const ExpertSchedule schedule = schedule_experts(backend, off, experts, kExpertsShareRows);
    for (int64_t e : schedule.solo) run_expert(e);
    parallel_items(backend, static_cast<int64_t>(schedule.shared.size()),
                   [&](int, int64_t i) { run_expert(schedule.shared[i]); });
  });
}

}  // namespace moe_cpu
