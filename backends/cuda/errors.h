// Errors inside the CUDA backend. Op code throws OpError; every entry point of the op table runs its
// body through guarded() (backend_instance.h), which turns whatever was thrown into a moe_status and a
// message handed to the host's set_error. Nothing is thrown across the ABI.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include <string>

#include "moe/moe_plugin.h"

namespace moe_cuda {

struct OpError {
  moe_status status;
  std::string message;
};

[[noreturn]] void fail(moe_status status, std::string message);
[[noreturn]] inline void invalid(std::string message) { fail(MOE_ERR_INVALID_ARGUMENT, std::move(message)); }

// Throws MOE_ERR_BACKEND (MOE_ERR_OUT_OF_MEMORY for allocation failures) naming `what` and CUDA's reason.
void check_cuda(cudaError_t status, const char* what);
void check_cublas(cublasStatus_t status, const char* what);
// The launch error of the kernel just enqueued, if any.
void check_launch(const char* kernel);

// The host table moe_plugin_entry received (kept only when its ABI major matches ours).
void set_host(const moe_host_api* host);
void log_message(int32_t level, const std::string& message);

// Hands the exception being handled to the host as a message and returns its status.
moe_status status_of_current_exception() noexcept;

}  // namespace moe_cuda
