// OpenMP helpers that honour the backend's thread count and stay serial when the work is too small
// for a parallel region (a region costs a few microseconds). Bodies of parallel_workers and
// parallel_ranges must not throw: an exception cannot leave an OpenMP region, so ops check their
// arguments and take their memory before. parallel_items bodies may throw (they run whole ops, e.g.
// one expert's matmuls): the first exception is caught inside and rethrown after the region.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>

#include "cpu_backend.h"

namespace moe_cpu {

// Elementwise and row loops go parallel only when each thread gets at least this many floats to
// read or write (~128 KiB, some 10-20 us of memory-bound work): a parallel region costs several
// microseconds on an idle machine, and on a loaded one every region waits for the slowest thread
// to be scheduled, so tiny regions made training with 2 threads slower than with 1.
constexpr int64_t kMinFloatsPerThread = int64_t{1} << 15;

// The threads an op may use here: inside a parallel region (an op called from a worker, e.g. one
// expert of expert_mlp per thread) only the calling thread.
inline int64_t team_threads(const moe_backend& be) { return omp_in_parallel() ? 1 : be.threads; }

// Splits [0, n) into one contiguous range per worker (boundaries at multiples of `grain`), using at
// most n / min_per_thread workers, and calls body(worker, begin, end) with worker < be.threads.
template <typename Body>
void parallel_workers(const moe_backend& be, int64_t n, int64_t min_per_thread, int64_t grain, Body&& body) {
  if (n <= 0) return;
  const int64_t threads =
      std::min<int64_t>(team_threads(be), std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread)));
  if (threads <= 1) {
    body(0, int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t units = (n + grain - 1) / grain;
    const int64_t begin = std::min(n, units * me / team * grain);
    const int64_t end = std::min(n, units * (me + 1) / team * grain);
    if (begin < end) body(static_cast<int>(me), begin, end);
  }
}

// body(begin, end) over ranges of [0, n), as parallel_workers.
template <typename Body>
void parallel_ranges(const moe_backend& be, int64_t n, int64_t min_per_thread, int64_t grain, Body&& body) {
  parallel_workers(be, n, min_per_thread, grain, [&body](int, int64_t begin, int64_t end) { body(begin, end); });
}

// body(worker, i) for i in [0, n), dynamically scheduled (for items of uneven cost).
template <typename Body>
void parallel_items(const moe_backend& be, int64_t n, Body&& body) {
  if (n <= 0) return;
  const int threads = static_cast<int>(std::min<int64_t>(team_threads(be), n));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) body(0, i);
    return;
  }
  std::exception_ptr failure;
  std::mutex failure_mutex;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(omp_get_thread_num(), i);
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Sets the calling thread's OpenMP thread count for the oneDNN calls in scope (oneDNN sizes its
// parallel regions by omp_get_max_threads()) and restores it after.
class OmpThreadCount {
 public:
  explicit OmpThreadCount(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~OmpThreadCount() { omp_set_num_threads(saved_); }
  OmpThreadCount(const OmpThreadCount&) = delete;
  OmpThreadCount& operator=(const OmpThreadCount&) = delete;

 private:
  int saved_;
};

}  // namespace moe_cpu
