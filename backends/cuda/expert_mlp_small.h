// expert_mlp while a step is recorded: no host copy of the offsets. Two kernels over (expert with rows,
// tile of output columns): the grid has min(experts, rows) expert slots, since at most that many experts
// have rows, and block (i, tile) finds the i-th expert with rows by reading the offsets on the device
// (slots beyond the experts with rows exit). Only the chosen experts' weights are read, each weight row
// by one warp in 16-byte loads, with f32 accumulation:
//   hidden[r, j] = act(x[r] . gate_up[e][j]) * (x[r] . gate_up[e][F + j])   (f32, a temporary)
//   y[r, c] = hidden[r] . down[e][c]
// Meant for decode steps (a few rows per expert: each weight row is read once per 4 rows of its expert).
// The offsets are checked by the first block of the second kernel (device_index_checks.h); the others clamp them to [0, rows],
// so a bad offset never makes a block read or write out of bounds.
#pragma once

#include "backend_instance.h"
#include "experts.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

void expert_mlp_on_device(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets,
                          const void* gate_up, const void* down, int32_t activation, float* y);

// expert_mlp_unpermute's combination of one token's expert outputs: out [1, dim] (+)= sum_j weights[j] *
// y[row of flat index j] (moe_unpermute's order, source its rows' flat indices).
struct TokenCombine {
  const int32_t* source;
  const float* weights;
  bool accumulate;
  float* out;
};
constexpr int64_t kMaxCombineRows = 1024;  // a token's rows (top_k) the combining kernel takes
// expert_mlp_on_device for the rows of one token (s.rows = its top_k), whose second kernel also combines the
// rows into `combine.out` as moe_unpermute's recorded kernel does: y and out are those of expert_mlp_on_device
// followed by that kernel, bit for bit. Returns false, launching nothing, where it does not take the shapes (no
// rows, more than kMaxCombineRows, or an empty dimension); the caller then runs the two ops.
bool expert_mlp_combine_on_device(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets,
                                  const void* gate_up, const void* down, int32_t activation, float* y,
                                  const TokenCombine& combine);

}  // namespace moe_cuda
