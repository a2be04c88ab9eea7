// The row counts (M) oneDNN matmul primitives are created for. A primitive is specialised for its M
// and costs ~0.5 ms to create, while the M of a call varies (prompt lengths, rows per expert), so
// calls are mapped onto a small set of M values: multiples of a granularity that grows with M
// (8 up to 127 rows, then an eighth of the power of two below M, at most 256), i.e. at most eight
// values per octave, with at most 1/8 of padding or remainder.
//
// Measured on the prefill experts (bench --only strategies: 16 experts x ~256 rows, M different
// every call, 2 threads): f32 37.8 ms per layer with 22 primitives, against 39.0 ms for one
// primitive per exact M (174 primitives) and 45.2 ms for a single run-time-M primitive (oneDNN 2.6
// then falls back from brgemm to its gemm-based matmul); bf16 20.1-20.6 ms for all three.
#pragma once

#include <cstdint>

namespace moe_cpu {

inline int64_t row_granularity(int64_t m) {
  int64_t pow2 = 1;
  while (pow2 * 2 <= m) pow2 *= 2;
  const int64_t g = pow2 / 8;
  return g < 8 ? 8 : (g > 256 ? 256 : g);
}

// The smallest bucket holding m rows (expert_mlp pads its rows up to it).
inline int64_t round_rows_up(int64_t m) {
  const int64_t g = row_granularity(m);
  return (m + g - 1) / g * g;
}

// The largest bucket not above m (gemm runs that many rows in place, then the rest); below the
// first bucket, m itself.
inline int64_t round_rows_down(int64_t m) {
  const int64_t g = row_granularity(m);
  return m < g ? m : m / g * g;
}

}  // namespace moe_cpu
