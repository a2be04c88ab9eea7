#include "kernel_select.h"

#include <cstdlib>
#include <string>

#include "errors.h"

namespace moe_cpu {

const KernelTable& select_kernels() {
  const bool has_avx512 = __builtin_cpu_supports("x86-64-v4");
  const char* requested = std::getenv("MOE_CPU_ISA");
  if (!requested || !*requested) return has_avx512 ? avx512::kernel_table() : avx2::kernel_table();
  const std::string isa = requested;
  if (isa == "avx2") return avx2::kernel_table();
  if (isa == "avx512") {
    if (!has_avx512) fail(MOE_ERR_UNSUPPORTED, "MOE_CPU_ISA=avx512, but this CPU lacks AVX-512 (F, BW, VL, DQ)");
    return avx512::kernel_table();
  }
  invalid("MOE_CPU_ISA='" + isa + "' is not an instruction set this backend has kernels for (avx2, avx512)");
}

}  // namespace moe_cpu
