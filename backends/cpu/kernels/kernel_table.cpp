#include "kernels/isa_kernels.h"

// Stringify the namespace name for KernelTable::isa.
#define MOE_CPU_STR2(x) #x
#define MOE_CPU_STR(x) MOE_CPU_STR2(x)

namespace moe_cpu::MOE_CPU_ISA {

const KernelTable& kernel_table() {
  static const KernelTable table = {
      MOE_CPU_STR(MOE_CPU_ISA), gemv,        attention_scratch_floats, attention_item, gated_act_row,
      gated_act_row_bf16,       sigmoid,     exp_shifted_sum,          rmsnorm_row,    f32_to_bf16,
      bf16_to_f32,
  };
  return table;
}

}  // namespace moe_cpu::MOE_CPU_ISA
