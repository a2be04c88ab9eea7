// moe_permute and moe_unpermute while a step is recorded: no host counting sort and no host inverse of
// source. The expert ids and sources are read and checked on the device (device_index_checks.h); launch
// geometry depends on shapes only.
#pragma once

#include <cstdint>

#include "backend_instance.h"

namespace moe_cuda {

// One block: counts the rows of each expert, scans the counts into offsets, places each flat index
// t*top_k + j in its expert's rows in flat order (source), and copies the token rows into x_sorted. Rows
// with a bad expert id are reported and placed after all experts' rows (offsets[experts] then counts only
// the good rows), so source stays a permutation.
void permute_on_device(moe_backend& be, const float* x, const int32_t* ids, int64_t tokens, int64_t top_k,
                       int32_t experts, int64_t dim, float* x_sorted, int64_t* offsets, int32_t* source);

// out[t] (+)= sum_j weights[t, j] * y_sorted[row of (t, j)], the rows found by inverting source on the
// device (each block inverts it in shared memory; entries out of range or named twice are reported and
// skipped). The sum over j runs in order, so the result is deterministic.
void unpermute_on_device(moe_backend& be, const float* y_sorted, const int32_t* source, const float* weights,
                         int64_t tokens, int64_t top_k, int64_t dim, bool accumulate, float* out);

}  // namespace moe_cuda
