// f32 <-> bf16 over arrays (activations handed to bf16 matmuls, bf16 tables and weights read as f32).
#include "kernels/isa_kernels.h"
#include "kernels/simd.h"

namespace moe_cpu::MOE_CPU_ISA {

void f32_to_bf16(const float* src, uint16_t* dst, int64_t count) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) store_bf16(dst + i, load(src + i));
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    store_bf16_partial(dst + i, load_partial(src + i, rest), rest);
  }
}

void bf16_to_f32(const uint16_t* src, float* dst, int64_t count) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) store(dst + i, load_bf16(src + i));
  if (i < count) {
    const int rest = static_cast<int>(count - i);
    store_partial(dst + i, load_bf16_partial(src + i, rest), rest);
  }
}

}  // namespace moe_cpu::MOE_CPU_ISA
