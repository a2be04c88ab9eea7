#include "errors.h"

#include <atomic>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>

namespace moe_cpu {
namespace {

std::atomic<const moe_host_api*> g_host{nullptr};
thread_local std::string t_last_message;

void set_error_message(const char* message) noexcept {
  try {
    t_last_message = message;
  } catch (...) {
    t_last_message.clear();
  }
  const moe_host_api* host = g_host.load(std::memory_order_acquire);
  if (host && host->set_error) host->set_error(message);
}

}  // namespace

const std::string& last_error_message() { return t_last_message; }

void fail(moe_status status, std::string message) { throw OpError{status, std::move(message)}; }

void set_host(const moe_host_api* host) {
  const bool usable = MOE_STRUCT_HAS(host, moe_host_api, free_host_memory) &&
                      MOE_PLUGIN_ABI_MAJOR_OF(host->abi_version) == MOE_PLUGIN_ABI_MAJOR;
  g_host.store(usable ? host : nullptr, std::memory_order_release);
}

void log_message(int32_t level, const std::string& message) {
  const moe_host_api* host = g_host.load(std::memory_order_acquire);
  if (host && host->log) host->log(level, "cpu", message.c_str());
}

moe_status status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const OpError& e) {
    set_error_message(e.message.c_str());
    return e.status;
  } catch (const dnnl::error& e) {
    // e.what() is a static string in oneDNN; the status says which call failed and why.
    try {
      set_error_message(("oneDNN failed: " + std::string(e.what()) + " (dnnl_status " +
                         std::to_string(static_cast<int>(e.status)) + ")")
                            .c_str());
    } catch (...) {
      set_error_message("oneDNN failed");
    }
    return e.status == dnnl_out_of_memory ? MOE_ERR_OUT_OF_MEMORY : MOE_ERR_BACKEND;
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

}  // namespace moe_cpu
