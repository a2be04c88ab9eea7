// Log lines from the core and from plugins. A context installs a sink (the application's callback
// or stderr); lines above the sink's level are dropped.
#pragma once

#include <string>

#include "moe/moe_common.h"

namespace moe {

using LogSink = void (*)(int32_t level, const char* message, void* user_data);

struct Logger {
  int32_t level = MOE_LOG_WARN;
  LogSink sink = nullptr;  // nullptr: stderr
  void* user_data = nullptr;

  void write(int32_t line_level, const std::string& message) const;
};

// The process-wide logger plugins write to while they are being loaded and run (they have no
// context); contexts also write here unless they have their own callback.
Logger& process_logger();

}  // namespace moe
