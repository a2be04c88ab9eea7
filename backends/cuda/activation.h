// The gated activation over rows of a fused gate|up product, as the gated_act op and the experts use it.
#pragma once

#include <cstdint>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

void check_activation(int32_t activation);

// a[r, j] = act(h[r, j]) * h[r, j + width] for h [rows, 2 * width] and a [rows, width], each f32 or bf16,
// with row strides h_ld and a_ld.
void gated_act_rows(moe_backend& be, const void* h, moe_dtype h_type, int64_t h_ld, void* a, moe_dtype a_type,
                    int64_t a_ld, int64_t rows, int64_t width, int32_t activation);

// dh [rows, 2 * width] of gated_act_rows for its input h and the gradient da [rows, width] of its output;
// h, da and dh all f32 or all bf16, with row strides h_ld, da_ld and dh_ld.
void gated_act_backward_rows(moe_backend& be, const void* h, int64_t h_ld, const void* da, int64_t da_ld, void* dh,
                             int64_t dh_ld, moe_dtype type, int64_t rows, int64_t width, int32_t activation);

}  // namespace moe_cuda
