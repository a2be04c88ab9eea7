#include "plugins/host_api.h"

#include <cstdlib>

#include "base/log.h"

namespace moe {
namespace {

thread_local std::string t_plugin_error;

void host_log(int32_t level, const char* plugin_name, const char* message) {
  process_logger().write(level, std::string(plugin_name ? plugin_name : "plugin") + ": " + (message ? message : ""));
}

void host_set_error(const char* message) { t_plugin_error = message ? message : ""; }

void* host_alloc(size_t bytes) { return std::malloc(bytes ? bytes : 1); }

void host_free(void* ptr) { std::free(ptr); }

}  // namespace

const moe_host_api* host_api() {
  static const moe_host_api api = {sizeof(moe_host_api), MOE_PLUGIN_ABI_VERSION, host_log, host_set_error,
                                   host_alloc, host_free};
  return &api;
}

std::string take_plugin_error() {
  std::string message;
  message.swap(t_plugin_error);
  return message;
}

}  // namespace moe
