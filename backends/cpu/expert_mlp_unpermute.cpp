// expert_mlp_unpermute (plugin ABI 1.5): the routed experts and the weighted combination of their outputs.
// On the CPU the two ops have nothing to gain from running as one, so this is them in turn (the same results
// by construction); the op lets a recorded step hold them as one entry.
#include "backend_ops.h"
#include "errors.h"
#include "tensor_checks.h"

namespace moe_cpu {

moe_status cpu_expert_mlp_unpermute(moe_backend* be, const moe_tensor* x_sorted, const moe_tensor* offsets,
                                    const moe_tensor* gate_up, const moe_tensor* down, int32_t activation,
                                    const moe_tensor* source, const moe_tensor* weights, int32_t accumulate,
                                    moe_tensor* y_sorted, moe_tensor* out) {
  const moe_status checked = guarded([&] {
    check_tensor(y_sorted, "y_sorted", MOE_DTYPE_F32, 2);
    check_tensor(out, "out", MOE_DTYPE_F32, 2);
    check_disjoint(y_sorted, "y_sorted", out, "out", "out is written from y_sorted");
  });
  if (checked != MOE_OK) return checked;
  const moe_status s = cpu_expert_mlp(be, x_sorted, offsets, gate_up, down, activation, y_sorted);
  if (s != MOE_OK) return s;
  return cpu_moe_unpermute(be, y_sorted, source, weights, accumulate, out);
}

}  // namespace moe_cpu
