// argmax_rows: the index of each row's largest value (greedy decoding's next token), rows split over
// the backend's threads when there are enough of them to pay for a parallel region.
#include <cmath>
#include <cstdint>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

// The first index of the row's largest value, NaN skipped (0 for a row of only NaN). The best value
// stays in a register; `v > best` is false for NaN, so after the first non-NaN value NaN needs no test.
int32_t row_argmax(const float* row, int64_t n) {
  int64_t i = 0;
  while (i < n && std::isnan(row[i])) ++i;
  if (i == n) return 0;
  int64_t best = i;
  float best_value = row[i];
  for (++i; i < n; ++i) {
    if (row[i] > best_value) {
      best_value = row[i];
      best = i;
    }
  }
  return static_cast<int32_t>(best);
}

}  // namespace

moe_status cpu_argmax_rows(moe_backend* be, const moe_tensor* x, moe_tensor* out) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    check_tensor(x, "x", MOE_DTYPE_F32, 2);
    const int64_t rows = x->shape[0], n = x->shape[1];
    if (n < 1) invalid("x " + shape_string(*x) + " has rows of no values: each row needs at least one");
    if (n > INT32_MAX) invalid("x " + shape_string(*x) + " has rows longer than an i32 index can name (2^31 - 1)");
    if (check_tensor(out, "out", MOE_DTYPE_I32, 1) != rows)
      invalid("out " + shape_string(*out) + " must have one element per row of x " + shape_string(*x));
    const float* xd = data_of<const float>(x);
    int32_t* od = data_of<int32_t>(out);
    parallel_ranges(backend, rows, kMinFloatsPerThread / n + 1, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) od[r] = row_argmax(xd + r * n, n);
    });
  });
}

}  // namespace moe_cpu
