// The core's one error type. Core code throws moe::Error; the C ABI layer (api/src) catches it and
// turns it into a moe_status plus the thread's last error message. Nothing else crosses the ABI.
#pragma once

#include <stdexcept>
#include <string>

#include "moe/moe_common.h"

namespace moe {

class Error : public std::runtime_error {
 public:
  Error(moe_status status, std::string message) : std::runtime_error(std::move(message)), status_(status) {}
  moe_status status() const noexcept { return status_; }

 private:
  moe_status status_;
};

[[noreturn]] inline void fail(moe_status status, const std::string& message) { throw Error(status, message); }

// Checks a precondition on caller input; the message says what was wrong.
inline void require(bool ok, moe_status status, const std::string& message) {
  if (!ok) fail(status, message);
}

}  // namespace moe
