// A context: the plugins discovery found, the backend instance chosen from them, and the logger.
// Models keep their context alive (shared ownership), so freeing the application's handle first is
// safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "plugins/registry.h"
#include "tensor/backend.h"

namespace moe {

struct ContextOptions {
  std::string backend = "auto";
  int32_t num_threads = 0;
  int32_t device = 0;
  PluginSearch search;
  Logger logger;
};

class Context {
 public:
  explicit Context(ContextOptions options);

  Backend& backend() const { return *backend_; }
  const std::vector<PluginRecord>& plugins() const { return plugins_; }
  const Logger& logger() const { return options_.logger; }
  // The loaded modality plugin for `modality` ("text", ...); throws MOE_ERR_PLUGIN naming what was
  // searched when there is none.
  const moe_modality_ops& modality(const std::string& modality) const;

 private:
  ContextOptions options_;
  std::vector<PluginRecord> plugins_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace moe
