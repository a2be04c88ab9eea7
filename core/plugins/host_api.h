// The host table every plugin receives, and the thread-local error a plugin sets through it.
#pragma once

#include <string>

#include "moe/moe_plugin.h"

namespace moe {

const moe_host_api* host_api();

// The message the calling thread's last plugin call left with host->set_error (then cleared).
std::string take_plugin_error();

}  // namespace moe
