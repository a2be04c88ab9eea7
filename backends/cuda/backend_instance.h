// One CUDA backend instance: its device, its stream (every op of the instance is enqueued there, so
// device memory freed by one op is reused by the next in stream order), its cuBLAS handle and a lock.
//
// Several application threads may call ops on one instance at once. Each op holds the instance's lock
// while it enqueues its work: the stream, the cuBLAS handle and its workspace are shared, and an op's
// temporaries must not be reused by another op's kernels in between. The GPU runs one stream's work in
// order anyway, so the lock costs no device time.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "errors.h"
#include "recording.h"

struct moe_backend {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void* blas_workspace = nullptr;
  // How products of f32 operands are computed: CUBLAS_COMPUTE_32F (exact f32, the default) unless
  // MOE_CUDA_F32_MATH asks for tensor cores (instance.cpp); grouped products have no bf16 mode, so they
  // use TF32 whenever tensor cores are asked for, except those that grouped_gemm.cpp runs as separate
  // bf16 products under FAST_16BF. Under FAST_16BF attention_backward runs on bf16 tensor cores.
  cublasComputeType_t f32_compute = CUBLAS_COMPUTE_32F;
  cublasComputeType_t grouped_f32_compute = CUBLAS_COMPUTE_32F;
  std::string description;
  std::mutex mutex;
  moe_cuda::RecordingState recording;
  std::condition_variable recording_ended;  // notified (under mutex) when a recording ends
};

namespace moe_cuda {

// Runs an op's body on instance `be`: names a null instance, takes its lock (waiting while another
// thread records), makes its device the calling thread's current one (threads start on device 0), and
// notes a failure while this thread records for record_end.
template <typename Body>
moe_status guarded(moe_backend* be, Body&& body) noexcept {
  try {
    if (!be) invalid("backend instance is null");
    std::unique_lock lock(be->mutex);
    be->recording_ended.wait(lock, [be] {
      return !be->recording.active.load(std::memory_order_relaxed) ||
             be->recording.thread == std::this_thread::get_id();
    });
    check_cuda(cudaSetDevice(be->device), "cudaSetDevice");
    try {
      body(*be);
    } catch (const OpError& e) {
      note_recording_failure(*be, e.message);
      throw;
    } catch (...) {
      note_recording_failure(*be, "an internal error (out of host memory or an unexpected exception)");
      throw;
    }
    return MOE_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace moe_cuda
