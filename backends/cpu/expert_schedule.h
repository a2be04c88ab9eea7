// How expert_mlp and its backward pass spread experts over threads. An expert's matmuls can use all
// threads, or each thread can take whole experts with single-threaded matmuls. The second needs one
// parallel region per op instead of several per expert and no synchronisation inside an expert,
// which wins when experts are many and small (training a small model: 8 experts x ~500 rows of
// width 384 gave dozens of short regions per layer). It loses when one expert holds most rows
// (an untrained router often sends most tokens to one expert): that expert alone would set the
// op's time. So experts with more than their share of rows run first, one at a time on all
// threads; the rest are shared out, largest first.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace moe_cpu {

// Experts share threads only when the op has at least this many rows: decode's one or two rows per
// expert stay on the GEMV kernels split over all threads, which stream one expert's weights at the
// full memory bandwidth.
constexpr int64_t kExpertsShareRows = 64;

struct ExpertSchedule {
  std::vector<int64_t> solo;    // experts to run one at a time, each on all threads
  std::vector<int64_t> shared;  // experts to hand out whole, one thread each, largest first
};

// offsets [experts + 1] as expert_mlp takes them; experts without rows are left out.
inline ExpertSchedule schedule_experts(const moe_backend& be, const int64_t* offsets, int64_t experts,
                                       int64_t min_shared_rows) {
  ExpertSchedule s;
  const int64_t threads = team_threads(be);
  const int64_t total = offsets[experts] - offsets[0];
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t m = offsets[e + 1] - offsets[e];
    if (m == 0) continue;
    // More than half a thread's fair share cannot be balanced by handing out whole experts.
    const bool alone = threads <= 1 || total < min_shared_rows || 2 * threads * m > total;
    (alone ? s.solo : s.shared).push_back(e);
  }
  std::stable_sort(s.shared.begin(), s.shared.end(), [offsets](int64_t a, int64_t b) {
    return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
  });
  return s;
}

}  // namespace moe_cpu
