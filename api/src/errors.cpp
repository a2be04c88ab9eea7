// Version, status names and the thread-local last error.
#include <string>

#include "guard.h"

namespace moe::api {
namespace {
thread_local std::string t_last_error;
}  // namespace
void set_last_error(const std::string& message) { t_last_error = message; }
const char* last_error() { return t_last_error.c_str(); }
}  // namespace moe::api

extern "C" {

const char* moe_version(void) {
#define MOE_STR2(x) #x
#define MOE_STR(x) MOE_STR2(x)
  return MOE_STR(MOE_VERSION_MAJOR) "." MOE_STR(MOE_VERSION_MINOR) "." MOE_STR(MOE_VERSION_PATCH);
}

const char* moe_status_string(moe_status status) {
  switch (status) {
    case MOE_OK: return "MOE_OK";
    case MOE_ERR_INVALID_ARGUMENT: return "MOE_ERR_INVALID_ARGUMENT";
    case MOE_ERR_IO: return "MOE_ERR_IO";
    case MOE_ERR_FORMAT: return "MOE_ERR_FORMAT";
    case MOE_ERR_UNSUPPORTED: return "MOE_ERR_UNSUPPORTED";
    case MOE_ERR_OUT_OF_MEMORY: return "MOE_ERR_OUT_OF_MEMORY";
    case MOE_ERR_BACKEND: return "MOE_ERR_BACKEND";
    case MOE_ERR_PLUGIN: return "MOE_ERR_PLUGIN";
    case MOE_ERR_CANCELLED: return "MOE_ERR_CANCELLED";
    case MOE_ERR_LIMIT: return "MOE_ERR_LIMIT";
    case MOE_ERR_NOT_FOUND: return "MOE_ERR_NOT_FOUND";
    case MOE_ERR_INTERNAL: return "MOE_ERR_INTERNAL";
    default: return "unknown status";
  }
}

const char* moe_last_error_message(void) { return moe::api::last_error(); }

}  // extern "C"
