// Index tensors (token ids, positions, cache slots, expert ids and offsets, sorted-row sources) live on
// the device, but the op table requires a bad index to fail the call that got it, with a message naming
// the entry. So they are copied to the host and checked there before any kernel uses them; the host
// copies also plan the launches (expert row counts, attention work items). The copy waits for the
// stream: this is the price of the check, paid once per op that takes indices.
#pragma once

#include <cstdint>
#include <vector>

#include "backend_instance.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

// An i32 tensor with one entry per token whose entries must lie in [low, high], on the host.
std::vector<int32_t> token_indices(moe_backend& be, const moe_tensor* t, const char* name, int64_t tokens, int64_t low,
                                   int64_t high);

// Expert offsets (i64 [experts + 1], as moe_permute writes them) that must rise from >= 0 to <= rows.
std::vector<int64_t> expert_offsets(moe_backend& be, const moe_tensor* offsets, int64_t experts, int64_t rows);

// The sorted-row sources of moe_permute (i32 [rows]), which must be a permutation of [0, rows); returns
// the inverse: row_of[t * top_k + j] is the sorted row holding token t's j-th expert output.
std::vector<int32_t> inverse_of_source(moe_backend& be, const moe_tensor* source, int64_t rows);

}  // namespace moe_cuda
