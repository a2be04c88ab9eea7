// Rotary position embedding, in place. NEOX pairs (i, i + rot_dim/2); INTERLEAVED pairs (2i, 2i+1);
// both compute (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with the angle of pair i. While a step is
// recorded, the positions are checked by the kernel (device_index_checks.h) instead of on the host.
#include <string>

#include "backend_instance.h"
#include "backend_ops.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "index_checks.h"
#include "tensor_checks.h"
#include "pdl_launch.cuh"
#include "rope.h"

namespace moe_cuda {
namespace {

// One thread per (token, head, pair).
__global__ void rope_pairs(float* x, const int32_t* positions, const float* cos_table, const float* sin_table,
                           int64_t heads, int64_t head_dim, int64_t rot_offset, int64_t half, bool neox,
                           int64_t pairs, int64_t max_positions, IndexError* errors) {
  pdl_wait_and_release();
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < pairs; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t pair = i % half, head_index = i / half, token = head_index / heads;
    const int64_t p = positions[token];
    if (errors && !index_ok(errors, IndexCheck::kRopePositions, token, -1, p, 0, max_positions - 1)) continue;
    float* head = x + head_index * head_dim + rot_offset;
    const int64_t i1 = neox ? pair : 2 * pair, i2 = neox ? pair + half : 2 * pair + 1;
    const float c = cos_table[p * half + pair], s = sin_table[p * half + pair];
    rotate_pair(head[i1], head[i2], c, s, head[i1], head[i2]);
  }
}

}  // namespace

RopeShape check_rope(const moe_tensor* x, const char* x_name, const moe_tensor* positions,
                     const moe_tensor* cos_table, const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim,
                     int32_t layout) {
  check_tensor(x, x_name, MOE_DTYPE_F32, 3);
  const int64_t tokens = x->shape[0], heads = x->shape[1], head_dim = x->shape[2];
  if (check_tensor(positions, "positions", MOE_DTYPE_I32, -1) != tokens)
    invalid("positions " + shape_string(*positions) + " must have one entry per token of " + x_name + " " +
            shape_string(*x));
  check_tensor(cos_table, "cos_table", MOE_DTYPE_F32, 2);
  check_tensor(sin_table, "sin_table", MOE_DTYPE_F32, 2);
  if (layout != MOE_ROPE_NEOX && layout != MOE_ROPE_INTERLEAVED)
    invalid("layout " + std::to_string(layout) + " is neither MOE_ROPE_NEOX (0) nor MOE_ROPE_INTERLEAVED (1)");
  if (rot_dim <= 0 || rot_dim % 2 || rot_offset < 0 || int64_t{rot_offset} + rot_dim > head_dim)
    invalid("rotary dims [" + std::to_string(rot_offset) + ", " + std::to_string(int64_t{rot_offset} + rot_dim) +
            ") must be an even, non-empty range inside the head dim " + std::to_string(head_dim));
  const int64_t half = rot_dim / 2, max_positions = cos_table->shape[0];
  if (cos_table->shape[1] != half || sin_table->shape[0] != max_positions || sin_table->shape[1] != half)
    invalid("cos_table " + shape_string(*cos_table) + " and sin_table " + shape_string(*sin_table) +
            " must both be [max_positions, rot_dim/2 = " + std::to_string(half) + "]");
  return RopeShape{tokens, heads, head_dim, half, max_positions};
}

moe_status cuda_rope(moe_backend* be, moe_tensor* x, const moe_tensor* positions, const moe_tensor* cos_table,
                     const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim, int32_t layout) {
  return guarded(be, [&](moe_backend& b) {
    const RopeShape r = check_rope(x, "x", positions, cos_table, sin_table, rot_offset, rot_dim, layout);
    const int64_t tokens = r.tokens, heads = r.heads, head_dim = r.head_dim, half = r.half;
    const int64_t max_positions = r.max_positions;
    // Checked here (the kernel reads the device copy), or by the kernel while recording.
    IndexError* errors = recording(b) ? device_index_errors(b) : nullptr;
    if (!errors) token_indices(b, positions, "positions", tokens, 0, max_positions - 1);
    const int64_t pairs = tokens * heads * half;
    if (pairs == 0) return;
    launch_pdl(b, "rope_pairs", rope_pairs, grid_for(pairs), kThreads, 0,
        data_of<float>(x), data_of<const int32_t>(positions), data_of<const float>(cos_table),
        data_of<const float>(sin_table), heads, head_dim, rot_offset, half, layout == MOE_ROPE_NEOX, pairs,
        max_positions, errors);
  });
}

}  // namespace moe_cuda
