// expert_mlp_unpermute (plugin ABI 1.5): the routed experts and the weighted combination of their outputs.
//
// In a recorded decode step of one token these were three kernels (expert_gate_up, expert_down,
// unpermute_rows), the last a few microseconds of launch and dependency latency around almost no work.
// While recording one token's rows with the fused kernels switched on (fused_decode.h), the down product's
// kernel also combines the rows into out (expert_mlp_small.h), giving the two ops' results bit for bit.
// Everything else runs the expert_mlp op, then the moe_unpermute op.
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "expert_mlp_small.h"
#include "experts.h"
#include "fused_decode.h"
#include "moe_permute.h"
#include "recording.h"
#include "tensor_checks.h"

namespace moe_cuda {

moe_status cuda_expert_mlp_unpermute(moe_backend* be, const moe_tensor* x_sorted, const moe_tensor* offsets,
                                     const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                     const moe_tensor* source, const moe_tensor* weights, int32_t accumulate,
                                     moe_tensor* y_sorted, moe_tensor* out) {
  bool fused = false;
  const moe_status checked = guarded(be, [&](moe_backend& b) {
    check_tensor(y_sorted, "y_sorted", MOE_DTYPE_F32, 2);
    check_tensor(out, "out", MOE_DTYPE_F32, 2);
    check_disjoint(y_sorted, "y_sorted", out, "out", "out is written from y_sorted");
    // Off the fused path, the two ops below check the rest themselves.
    if (!recording(b) || !fused_decode_switched_on("expert_mlp_unpermute")) return;
    const ExpertShapes s = check_experts(x_sorted, gate_up, down, activation);
    if (y_sorted->shape[0] != s.rows || y_sorted->shape[1] != s.dim)
      invalid("y " + shape_string(*y_sorted) + " must have the shape of x " + shape_string(*x_sorted));
    if (check_tensor(offsets, "offsets", MOE_DTYPE_I64, -1) != s.experts + 1)
      invalid("offsets " + shape_string(*offsets) + " must have experts + 1 = " + std::to_string(s.experts + 1) +
              " entries");
    check_unpermute(y_sorted, source, weights, out, "out");
    if (weights->shape[0] != 1) return;  // one token's rows only
    const TokenCombine combine{data_of<const int32_t>(source), data_of<const float>(weights), accumulate != 0,
                               data_of<float>(out)};
    fused = expert_mlp_combine_on_device(b, s, data_of<const float>(x_sorted), data_of<const int64_t>(offsets),
                                         gate_up->data, down->data, activation, data_of<float>(y_sorted), combine);
  });
  if (checked != MOE_OK || fused) return checked;
  // The two ops in turn; each reports its own failure.
  const moe_status s = cuda_expert_mlp(be, x_sorted, offsets, gate_up, down, activation, y_sorted);
  if (s != MOE_OK) return s;
  return cuda_moe_unpermute(be, y_sorted, source, weights, accumulate, out);
}

}  // namespace moe_cuda
