#include "experts.h"

#include <string>

#include "activation.h"
#include "index_checks.h"
#include "tensor_checks.h"

namespace moe_cuda {

ExpertShapes check_experts(const moe_tensor* x, const moe_tensor* gate_up, const moe_tensor* down,
                           int32_t activation) {
  check_tensor(x, "x", MOE_DTYPE_F32, 2);
  check_float_tensor(gate_up, "gate_up", 3);
  check_float_tensor(down, "down", 3);
  check_activation(activation);
  const ExpertShapes s{x->shape[0], x->shape[1], gate_up->shape[0], gate_up->shape[1] / 2, gate_up->dtype};
  if (down->dtype != gate_up->dtype)
    fail(MOE_ERR_UNSUPPORTED, std::string("gate_up is ") + dtype_name(gate_up->dtype) + " but down is " +
                                  dtype_name(down->dtype) + ": the experts' weights must share one dtype");
  if (gate_up->shape[1] % 2 || gate_up->shape[2] != s.dim || down->shape[0] != s.experts ||
      down->shape[1] != s.dim || down->shape[2] != s.width)
    invalid("gate_up " + shape_string(*gate_up) + " must be [experts, 2F, dim] and down " + shape_string(*down) +
            " [experts, dim, F] for x " + shape_string(*x));
  return s;
}

ExpertRows expert_rows(moe_backend& be, const moe_tensor* offsets, const ExpertShapes& s) {
  ExpertRows r;
  r.offsets = expert_offsets(be, offsets, s.experts, s.rows);
  for (int64_t e = 0; e < s.experts; ++e)
    if (r.size(e) > 0) r.active.push_back(e);
  r.first = r.offsets[0];
  r.count = r.offsets[s.experts] - r.offsets[0];
  return r;
}

}  // namespace moe_cuda
