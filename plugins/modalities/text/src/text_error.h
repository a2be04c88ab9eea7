// The plugin's one error type. Every component throws it with a message that names the file and
// the key (or the argument) at fault; the C entry points turn it into a status and host->set_error.
#pragma once

#include <stdexcept>
#include <string>

#include "moe/moe_common.h"

namespace moe::text {

class Error : public std::runtime_error {
 public:
  Error(moe_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  moe_status status() const noexcept { return status_; }

 private:
  moe_status status_;
};

[[noreturn]] inline void fail(moe_status status, const std::string& message) { throw Error(status, message); }

}  // namespace moe::text
