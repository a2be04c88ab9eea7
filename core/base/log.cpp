#include "base/log.h"

#include <cstdio>

namespace moe {

void Logger::write(int32_t line_level, const std::string& message) const {
  if (line_level > level) return;
  if (sink) {
    sink(line_level, message.c_str(), user_data);
    return;
  }
  static const char* const names[] = {"error", "warning", "info", "debug"};
  const char* name = (line_level >= 0 && line_level <= 3) ? names[line_level] : "log";
  std::fprintf(stderr, "moe: %s: %s\n", name, message.c_str());
}

Logger& process_logger() {
  static Logger logger;
  return logger;
}

}  // namespace moe
