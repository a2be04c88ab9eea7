// Library errors as Python exceptions: a failed C call throws LibraryError (status + the calling
// thread's moe_last_error_message()), which the translator registered by register_errors() raises as
// the matching subclass of moesdk.Error (moesdk/errors.py).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "moe/moe.h"

namespace moesdk {

struct LibraryError {
  moe_status status;
  std::string message;
};

// Throws LibraryError when status is not MOE_OK. Call it on the thread that made the C call: the
// message is thread-local. Safe without the GIL.
void check(moe_status status);

void register_errors(pybind11::module_& m);

}  // namespace moesdk
