// The kernels of one instruction set, as kernel_table.cpp collects them (included only by the
// per-instruction-set sources, where MOE_CPU_ISA names the namespace).
#pragma once

#include "kernels/kernel_table.h"

namespace moe_cpu::MOE_CPU_ISA {

void gemv(const GemvArgs& args, int64_t n_begin, int64_t n_end);
size_t attention_scratch_floats(int64_t rows, int64_t dk, int64_t dv);
void attention_item(const AttentionItem& item, float* scratch);
size_t attention_backward_scratch_floats(int64_t keys, int64_t dk, int64_t dv);
void attention_backward_item(const AttentionBackwardItem& item, float* scratch);
void gated_act_row(const float* x, float* y, int64_t width, int32_t activation);
void gated_act_row_bf16(const float* x, uint16_t* y, int64_t width, int32_t activation);
void gated_act_backward_row(const float* x, const float* dy, int64_t width, int32_t activation, float* dx);
void sigmoid(const float* x, float* y, int64_t count);
float exp_shifted_sum(const float* x, float shift, float* y, int64_t count);
void rmsnorm_row(const float* x, const void* weight, bool weight_is_bf16, float eps, int64_t width, float* y);
void f32_to_bf16(const float* src, uint16_t* dst, int64_t count);
void bf16_to_f32(const uint16_t* src, float* dst, int64_t count);

}  // namespace moe_cpu::MOE_CPU_ISA
