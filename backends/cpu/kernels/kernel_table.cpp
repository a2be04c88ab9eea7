#include "kernels/isa_kernels.h"

// Stringify the namespace name for KernelTable::isa.
#define MOE_CPU_STR2(x) #x
#define MOE_CPU_STR(x) MOE_CPU_STR2(x)

namespace moe_cpu::MOE_CPU_ISA {

const KernelTable& kernel_table() {
  static const KernelTable table = {
      .isa = MOE_CPU_STR(MOE_CPU_ISA),
      .gemv = gemv,
      .attention_scratch_floats = attention_scratch_floats,
      .attention_item = attention_item,
      .attention_backward_scratch_floats = attention_backward_scratch_floats,
      .attention_backward_item = attention_backward_item,
      .gated_act_row = gated_act_row,
      .gated_act_row_bf16 = gated_act_row_bf16,
      .gated_act_backward_row = gated_act_backward_row,
      .sigmoid = sigmoid,
      .exp_shifted_sum = exp_shifted_sum,
      .rmsnorm_row = rmsnorm_row,
      .f32_to_bf16 = f32_to_bf16,
      .bf16_to_f32 = bf16_to_f32,
  };
  return table;
}

}  // namespace moe_cpu::MOE_CPU_ISA
