// Rotary position embedding, in place. NEOX pairs (i, i + rot_dim/2); INTERLEAVED pairs (2i, 2i+1);
// both compute (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with the angle of pair i.
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

void rotate_neox(float* x, const float* cos, const float* sin, int64_t half) {
  float* x1 = x;
  float* x2 = x + half;
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const float a = x1[i], b = x2[i];
    x1[i] = a * cos[i] - b * sin[i];
    x2[i] = b * cos[i] + a * sin[i];
  }
}

void rotate_interleaved(float* x, const float* cos, const float* sin, int64_t half) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos[i] - b * sin[i];
    x[2 * i + 1] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

moe_status cpu_rope(moe_backend* be, moe_tensor* x, const moe_tensor* positions, const moe_tensor* cos_table,
                    const moe_tensor* sin_table, int32_t rot_offset, int32_t rot_dim, int32_t layout) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 3);
    const int64_t tokens = x->shape[0], heads = x->shape[1], head_dim = x->shape[2];
    if (check_tensor(positions, "positions", MOE_DTYPE_I32, -1) != tokens)
      invalid("positions " + shape_string(*positions) + " must have one entry per token of x " + shape_string(*x));
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
    const int32_t* pos = data_of<const int32_t>(positions);
    for (int64_t t = 0; t < tokens; ++t)
      if (pos[t] < 0 || pos[t] >= max_positions)
        invalid("positions[" + std::to_string(t) + "] = " + std::to_string(pos[t]) + " is outside the tables' [0, " +
                std::to_string(max_positions) + ")");
    float* xd = data_of<float>(x);
    const float* cos = data_of<const float>(cos_table);
    const float* sin = data_of<const float>(sin_table);
    const int64_t min_rows = kMinFloatsPerThread / (2 * rot_dim + 1) + 1;
    parallel_ranges(backend, tokens * heads, min_rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t p = pos[i / heads];
        float* head = xd + i * head_dim + rot_offset;
        if (layout == MOE_ROPE_NEOX)
          rotate_neox(head, cos + p * half, sin + p * half, half);
        else
          rotate_interleaved(head, cos + p * half, sin + p * half, half);
      }
    });
  });
}

}  // namespace moe_cpu
