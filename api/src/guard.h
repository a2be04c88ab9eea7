// The one place where C++ exceptions become statuses: every exported function runs its body inside
// guarded(), which catches everything, records the message for moe_last_error_message() and returns
// the status. Nothing thrown ever crosses the C ABI.
#pragma once

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "base/error.h"
#include "moe/moe.h"

namespace moe::api {

void set_last_error(const std::string& message);
const char* last_error();

template <typename Body>
moe_status guarded(Body&& body) noexcept {
  try {
    body();
    return MOE_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return MOE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return MOE_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return MOE_ERR_INTERNAL;
  }
}

// Writes defaults into a caller's options struct of caller_size bytes (its header's sizeof): only
// the fields that size covers, then sets struct_size.
template <typename Options>
void fill_options(Options* options, uint32_t caller_size, Options defaults) {
  if (!options || caller_size < sizeof(uint32_t)) return;
  defaults.struct_size = static_cast<uint32_t>(std::min<size_t>(caller_size, sizeof(Options)));
  std::memcpy(options, &defaults, defaults.struct_size);
}

// Copies the fields a caller's options struct holds over `into` (which holds the defaults).
// NULL options keep the defaults.
template <typename Options>
void read_options(const Options* options, Options& into, const char* function) {
  if (!options) return;
  if (options->struct_size < sizeof(uint32_t) * 2)
    fail(MOE_ERR_INVALID_ARGUMENT, std::string(function) + ": options->struct_size is " +
                                       std::to_string(options->struct_size) + " (initialise options with the *_init function)");
  std::memcpy(&into, options, std::min<size_t>(options->struct_size, sizeof(Options)));
  into.struct_size = sizeof(Options);
}

// Argument checks shared by the entry points.
inline void require_arg(bool ok, const char* what) {
  if (!ok) fail(MOE_ERR_INVALID_ARGUMENT, what);
}

}  // namespace moe::api
