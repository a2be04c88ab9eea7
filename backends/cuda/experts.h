// What expert_mlp and its backward pass share: the weight checks, the experts that have rows, and the
// layout of their intermediates.
//
// Rows of expert e are [offsets[e], offsets[e+1]) (moe_permute's grouping). Every product over the
// experts is one grouped cuBLAS call with a problem per expert that has rows. With bf16 weights, the
// activations are converted to bf16 once and every product is bf16 x bf16 with f32 accumulation; the
// intermediates' rows are padded to 16 bytes, the alignment cuBLAS's bf16 kernels want for every row
// pointer. With f32 weights everything stays f32.
#pragma once

#include <cstdint>
#include <vector>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

struct ExpertShapes {
  int64_t rows, dim, experts, width;  // width: F, the hidden width of one expert
  moe_dtype wtype;                    // the weights' dtype, f32 or bf16
};

// Checks x [rows, dim], gate_up [experts, 2F, dim], down [experts, dim, F] and the activation.
ExpertShapes check_experts(const moe_tensor* x, const moe_tensor* gate_up, const moe_tensor* down,
                           int32_t activation);

struct ExpertRows {
  std::vector<int64_t> offsets;  // experts + 1 entries, read from the device and checked
  std::vector<int64_t> active;   // the experts that have rows, in order
  int64_t first = 0, count = 0;  // all their rows: [first, first + count)
  int64_t begin(int64_t e) const { return offsets[e]; }
  int64_t size(int64_t e) const { return offsets[e + 1] - offsets[e]; }
};

ExpertRows expert_rows(moe_backend& be, const moe_tensor* offsets, const ExpertShapes& s);

// A row of `width` elements of `type`, rounded up to a multiple of 16 bytes.
inline int64_t padded_row(int64_t width, moe_dtype type) {
  const int64_t per_16_bytes = type == MOE_DTYPE_BF16 ? 8 : 4;
  return (width + per_16_bytes - 1) / per_16_bytes * per_16_bytes;
}

inline size_t element_bytes(moe_dtype type) { return type == MOE_DTYPE_BF16 ? 2 : 4; }

}  // namespace moe_cuda
