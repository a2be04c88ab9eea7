// The C++ layer the SWIG interface wraps (namespace moesdk) reports a failed C call by throwing
// moesdk::Error; moe.i's %exception turns it into org.moesdk.MoeException / MoeSdk.MoeException.
#pragma once

#include <string>

#include "moe/moe.h"

namespace moesdk {

struct Error {
  moe_status status;
  std::string message;
};

// Throws when status is not MOE_OK, with the calling thread's moe_last_error_message().
inline void check(moe_status status) {
  if (status != MOE_OK) throw Error{status, moe_last_error_message()};
}

// An argument the bindings check themselves, before the C ABI could read past an array.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw Error{MOE_ERR_INVALID_ARGUMENT, message};
}

}  // namespace moesdk
