// The kernels' side of device_index_checks.h: report a bad index into the instance's record.
#pragma once

#include "device_index_checks.h"

namespace moe_cuda {

// Claims the record if nobody did yet and fills it in; the caller then skips the entry.
__device__ __forceinline__ void report_bad_index(IndexError* e, IndexCheck check, int64_t row, int64_t col,
                                                 int64_t value, int64_t low, int64_t high) {
  if (atomicCAS(e->claim, 0, 1) != 0) return;
  volatile IndexError* v = e;
  v->row = row;
  v->col = col;
  v->value = value;
  v->low = low;
  v->high = high;
  __threadfence_system();
  v->check = static_cast<int32_t>(check);
}

// True when low <= value <= high; otherwise reports it (when `e` is set) and returns false.
__device__ __forceinline__ bool index_ok(IndexError* e, IndexCheck check, int64_t row, int64_t col, int64_t value,
                                         int64_t low, int64_t high) {
  if (value >= low && value <= high) return true;
  if (e) report_bad_index(e, check, row, col, value, low, high);
  return false;
}

}  // namespace moe_cuda
