// Errors inside the CPU backend. Op code throws OpError (or lets oneDNN throw dnnl::error); every
// entry point of the op table runs its body through guarded(), which turns whatever was thrown into
// a moe_status and a message handed to the host's set_error. Nothing is thrown across the ABI.
#pragma once

#include <string>

#include "moe/moe_plugin.h"

namespace moe_cpu {

struct OpError {
  moe_status status;
  std::string message;
};

[[noreturn]] void fail(moe_status status, std::string message);
[[noreturn]] inline void invalid(std::string message) { fail(MOE_ERR_INVALID_ARGUMENT, std::move(message)); }

// The host table moe_plugin_entry received (kept only when its ABI major matches ours).
void set_host(const moe_host_api* host);
void log_message(int32_t level, const std::string& message);

// The message this thread last handed to the host (for a replay that reports a recorded op's failure later).
const std::string& last_error_message();

// Hands the exception being handled to the host as a message and returns its status.
moe_status status_of_current_exception() noexcept;

template <typename Body>
moe_status guarded(Body&& body) noexcept {
  try {
    body();
    return MOE_OK;
  } catch (...) {
    return status_of_current_exception();
  }
}

}  // namespace moe_cpu
