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

#include <mutex>
#include <string>

#include "errors.h"

struct moe_backend {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void* blas_workspace = nullptr;
  // How products of f32 operands are computed: CUBLAS_COMPUTE_32F (exact f32, the default) unless
  // MOE_CUDA_F32_MATH asks for tensor cores (instance.cpp); grouped products have no bf16 mode, so they
  // use TF32 whenever tensor cores are asked for.
  cublasComputeType_t f32_compute = CUBLAS_COMPUTE_32F;
  cublasComputeType_t grouped_f32_compute = CUBLAS_COMPUTE_32F;
  std::string description;
  std::mutex mutex;
};

namespace moe_cuda {

// Runs an op's body on instance `be`: names a null instance, takes its lock and makes its device the
// calling thread's current one (threads start on device 0).
template <typename Body>
moe_status guarded(moe_backend* be, Body&& body) noexcept {
  try {
    if (!be) invalid("backend instance is null");
    std::lock_guard lock(be->mutex);
    check_cuda(cudaSetDevice(be->device), "cudaSetDevice");
    body(*be);
    return MOE_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace moe_cuda
