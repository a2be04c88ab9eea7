// Which instruction set the hand-written kernels use: AVX-512 where the CPU has F, BW, VL and DQ
// (x86-64-v4), AVX2 otherwise. The environment variable MOE_CPU_ISA=avx2|avx512 overrides the
// choice (to test or compare the AVX2 kernels on an AVX-512 machine); asking for AVX-512 on a CPU
// without it is an error.
#pragma once

#include "kernels/kernel_table.h"

namespace moe_cpu {

const KernelTable& select_kernels();

}  // namespace moe_cpu
