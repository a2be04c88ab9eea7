// MOE_CUDA_PROFILE=1: where the backend's time goes, op by op. Every op of the table is then wrapped so
// that it waits for the stream before it starts and after it returns, and its wall time (host work,
// launches, the checks' copies and the kernels together) is added to its op's total. The waits
// serialise host and device, so a profiled run is slower than a plain one: the table says how the time
// splits, not how fast the engine is. The table (total, mean, median and slowest call of each op: warm-up
// calls such as the first use of a cuBLAS kernel show in the mean and the maximum, not the median) goes
// to stderr when an instance is destroyed.
#pragma once

#include <chrono>

#include "backend_instance.h"

namespace moe_cuda {

bool profiling_enabled();
void profile_add(const char* op, double seconds);
// Prints the totals so far (slowest op first) to stderr and starts over.
void profile_report();

// Profiled<&cuda_op, name>::call has cuda_op's signature (first argument the instance) and times it.
template <auto Fn, const char* Name>
struct Profiled;

template <typename... A, moe_status (*Fn)(moe_backend*, A...), const char* Name>
struct Profiled<Fn, Name> {
  static moe_status call(moe_backend* be, A... args) {
    if (!be) return Fn(be, args...);
    cudaStream_t stream = be->stream;  // set once at create
    // A capturing stream must not be waited for (the wait would end the capture): while a step is
    // recorded, ops are timed without waits (their host time), and other threads wait inside the op.
    const bool wait = !be->recording.active.load(std::memory_order_relaxed);
    cudaSetDevice(be->device);
    if (wait) cudaStreamSynchronize(stream);
    const auto start = std::chrono::steady_clock::now();
    const moe_status status = Fn(be, args...);
    if (wait && !be->recording.active.load(std::memory_order_relaxed)) cudaStreamSynchronize(stream);
    profile_add(Name, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return status;
  }
};

}  // namespace moe_cuda
