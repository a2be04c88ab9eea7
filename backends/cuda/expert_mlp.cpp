// expert_mlp: each expert's gated MLP over its block of rows, as two grouped products around the
// activation: H = X . gate_up[e]^T [m, 2F], A = act(H_gate) * H_up [m, F], Y = A . down[e]^T (experts.h).
// While a step is recorded, expert_mlp_small.h runs instead (offsets read on the device).
#include <string>

#include "activation.h"
#include "backend_instance.h"
#include "backend_ops.h"
#include "convert.h"
#include "device_buffer.h"
#include "expert_mlp_small.h"
#include "experts.h"
#include "grouped_gemm.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

// Y rows of the active experts from X rows (both of the weights' type, rows [r.first, r.first + r.count)
// with row strides ldx and ldy).
void expert_forward(moe_backend& be, const ExpertShapes& s, const ExpertRows& r, const void* x, int64_t ldx,
                    const void* gate_up, const void* down, int32_t activation, void* y, int64_t ldy) {
  const moe_dtype t = s.wtype;
  const size_t el = element_bytes(t);
  const int64_t f2 = 2 * s.width, ldh = padded_row(f2, t), lda = padded_row(s.width, t);
  DeviceBuffer hidden(be, static_cast<size_t>(r.count * ldh) * el);
  DeviceBuffer activated(be, static_cast<size_t>(r.count * lda) * el);
  auto at = [&](const void* base, int64_t row, int64_t ld) {
    return static_cast<const char*>(base) + static_cast<size_t>((row - r.first) * ld) * el;
  };
  std::vector<GroupedProblem> up, out;
  for (int64_t e : r.active) {
    const int64_t row = r.begin(e), m = r.size(e);
    up.push_back({at(x, row, ldx), static_cast<const char*>(gate_up) + static_cast<size_t>(e * f2 * s.dim) * el,
                  const_cast<char*>(at(hidden.as<void>(), row, ldh)), m, f2, s.dim, ldx, s.dim, ldh});
    out.push_back({at(activated.as<void>(), row, lda),
                   static_cast<const char*>(down) + static_cast<size_t>(e * s.dim * s.width) * el,
                   const_cast<char*>(at(y, row, ldy)), m, s.dim, s.width, lda, s.width, ldy});
  }
  grouped_gemm(be, t, false, true, 1.f, 0.f, up);
  // The active experts' rows are contiguous: one activation pass over all of them.
  gated_act_rows(be, hidden.as<void>(), t, ldh, activated.as<void>(), t, lda, r.count, s.width, activation);
  grouped_gemm(be, t, false, true, 1.f, 0.f, out);
}

}  // namespace

moe_status cuda_expert_mlp(moe_backend* be, const moe_tensor* x, const moe_tensor* offsets, const moe_tensor* gate_up,
                           const moe_tensor* down, int32_t activation, moe_tensor* y) {
  return guarded(be, [&](moe_backend& b) {
    const ExpertShapes s = check_experts(x, gate_up, down, activation);
    check_tensor(y, "y", MOE_DTYPE_F32, 2);
    if (y->shape[0] != s.rows || y->shape[1] != s.dim)
      invalid("y " + shape_string(*y) + " must have the shape of x " + shape_string(*x));
    if (recording(b)) {
      if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != s.experts + 1)
        invalid("offsets " + shape_string(*offsets) + " must have experts + 1 = " + std::to_string(s.experts + 1) +
                " entries");
      expert_mlp_on_device(b, s, data_of<const float>(x), data_of<const int64_t>(offsets), gate_up->data, down->data,
                           activation, data_of<float>(y));
      return;
    }
    const ExpertRows r = expert_rows(b, offsets, s);
    if (r.count == 0 || s.dim == 0) return;
    float* yd = data_of<float>(y) + r.first * s.dim;
    if (s.width == 0) {
      check_cuda(cudaMemsetAsync(yd, 0, static_cast<size_t>(r.count * s.dim) * sizeof(float), b.stream),
                 "cudaMemsetAsync");
      return;
    }
    const float* xd = data_of<const float>(x) + r.first * s.dim;
    if (s.wtype == MOE_DTYPE_F32) {
      expert_forward(b, s, r, xd, s.dim, gate_up->data, down->data, activation, yd, s.dim);
      return;
    }
    const int64_t ld = padded_row(s.dim, MOE_DTYPE_BF16);
    DeviceBuffer xb(b, static_cast<size_t>(r.count * ld) * 2), yb(b, static_cast<size_t>(r.count * ld) * 2);
    f32_to_bf16(b, xd, s.dim, xb.as<void>(), ld, r.count, s.dim);
    expert_forward(b, s, r, xb.as<void>(), ld, gate_up->data, down->data, activation, yb.as<void>(), ld);
    bf16_to_f32(b, yb.as<void>(), ld, yd, s.dim, r.count, s.dim);
  });
}

}  // namespace moe_cuda
