// Conversions between f32 and bf16 on the instance's stream, over row blocks with row strides.
#pragma once

#include <cstdint>

#include "backend_instance.h"

namespace moe_cuda {

// dst[r * dst_ld + c] = src[r * src_ld + c] converted, for r < rows, c < cols; rounding to bf16 is to
// nearest even.
void f32_to_bf16(moe_backend& be, const float* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                 int64_t cols);
void bf16_to_f32(moe_backend& be, const void* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows,
                 int64_t cols);

// dst[blocks[i]] += src[i] for i < count, where src block i is [rows, cols] bf16 with row stride src_ld
// (blocks src_ld * rows apart) and dst block b is a dense f32 [rows, cols] at dst + b * rows * cols: the
// bf16 products of several experts added into their f32 gradients.
void add_bf16_blocks(moe_backend& be, const void* src, int64_t src_ld, const int32_t* blocks, int64_t count,
                     int64_t rows, int64_t cols, float* dst);

}  // namespace moe_cuda
