// The rope op's argument checks and its per-pair rotation, shared by the op (rope.cu) and by rope_kv_store
// (rope_kv_store.cu), which must refuse what it refuses with the same messages and give its bits.
#pragma once

#include <cstdint>

#include "moe/moe_plugin.h"

namespace moe_cuda {

struct RopeShape {
  int64_t tokens, heads, head_dim, half, max_positions;
};

// x (named x_name) f32 [tokens, heads, head_dim]; positions i32 [tokens]; cos_table and sin_table f32
// [max_positions, rot_dim / 2]; rot_dim even and positive, [rot_offset, rot_offset + rot_dim) inside the head;
// layout MOE_ROPE_*. Throws naming the argument otherwise. Positions' values are not read.
RopeShape check_rope(const moe_tensor* x, const char* x_name, const moe_tensor* positions,
                     const moe_tensor* cos_table, const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim,
                     int32_t layout);

// (a, b) -> (a cos - b sin, b cos + a sin): the rotation of one pair, as the rope op computes it.
__host__ __device__ __forceinline__ void rotate_pair(float a, float b, float c, float s, float& first,
                                                     float& second) {
  first = a * c - b * s;
  second = b * c + a * s;
}

}  // namespace moe_cuda
