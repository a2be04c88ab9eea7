#include "errors.h"

#include <atomic>
#include <new>

namespace moe_cuda {
namespace {

std::atomic<const moe_host_api*> g_host{nullptr};

void set_error_message(const char* message) noexcept {
  const moe_host_api* host = g_host.load(std::memory_order_acquire);
  if (host && host->set_error) host->set_error(message);
}

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "an unknown cuBLAS status";
  }
}

}  // namespace

void fail(moe_status status, std::string message) { throw OpError{status, std::move(message)}; }

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  // Clears the runtime's last error, so that a later check_launch does not report this failure again.
  cudaGetLastError();
  const moe_status s = status == cudaErrorMemoryAllocation ? MOE_ERR_OUT_OF_MEMORY : MOE_ERR_BACKEND;
  fail(s, std::string(what) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail(status == CUBLAS_STATUS_ALLOC_FAILED ? MOE_ERR_OUT_OF_MEMORY
                                            : (status == CUBLAS_STATUS_NOT_SUPPORTED ? MOE_ERR_UNSUPPORTED
                                                                                     : MOE_ERR_BACKEND),
       std::string(what) + " failed: " + cublas_status_name(status));
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    fail(MOE_ERR_BACKEND, std::string("launching ") + kernel + " failed: " + cudaGetErrorName(status) + " (" +
                              cudaGetErrorString(status) + ")");
}

void set_host(const moe_host_api* host) {
  const bool usable = MOE_STRUCT_HAS(host, moe_host_api, free_host_memory) &&
                      MOE_PLUGIN_ABI_MAJOR_OF(host->abi_version) == MOE_PLUGIN_ABI_MAJOR;
  g_host.store(usable ? host : nullptr, std::memory_order_release);
}

void log_message(int32_t level, const std::string& message) {
  const moe_host_api* host = g_host.load(std::memory_order_acquire);
  if (host && host->log) host->log(level, "cuda", message.c_str());
}

moe_status status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const OpError& e) {
    set_error_message(e.message.c_str());
    return e.status;
  } catch (const std::bad_alloc&) {
    set_error_message("out of host memory");
    return MOE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error_message(e.what());
    return MOE_ERR_INTERNAL;
  } catch (...) {
    set_error_message("unknown internal error");
    return MOE_ERR_INTERNAL;
  }
}

}  // namespace moe_cuda
