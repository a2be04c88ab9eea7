// moesdk::Context: a moe_context (backend choice, threads, plugins), for the SWIG bindings.
#pragma once

#include <string>
#include <vector>

#include "moe/moe.h"
#include "moesdk_error.h"

namespace moesdk {

// moe_context_options with the library's defaults (moe_context_options_init).
struct ContextOptions {
  std::string backend;           // "cpu", "cuda" or "auto"
  int32_t numThreads;            // CPU threads; 0 = one per core
  bool searchDefaultDirs;        // after the plugin dirs, also MOE_PLUGIN_PATH and <libdir>/moe/plugins
  int32_t logLevel;              // MOE_LOG_*: lines at or below reach stderr
  int32_t device;                // GPU ordinal for GPU backends

  ContextOptions() {
    moe_context_options o;
    moe_context_options_init(&o);
    backend = o.backend ? o.backend : "auto";
    numThreads = o.num_threads;
    searchDefaultDirs = o.search_default_dirs != 0;
    logLevel = o.log_level;
    device = o.device;
  }
  // Directories searched for plugins first, in the order added.
  void addPluginDir(const std::string& dir) { pluginDirs.push_back(dir); }

#ifndef SWIG
  std::vector<std::string> pluginDirs;
#endif
};

// One plugin library that discovery found: loaded, rejected or unusable (MOE_PLUGIN_STATE_*).
struct PluginInfo {
  const std::string path, name, version, reason;  // reason: why it was refused ("" if loaded)
  const int32_t kind, state, score;               // kind: 1 backend, 2 modality
  const int64_t abiVersion;
};

class Context {
 public:
  Context() : Context(ContextOptions()) {}
  explicit Context(const ContextOptions& options) {
    moe_context_options o;
    moe_context_options_init(&o);
    std::vector<const char*> dirs;
    for (const auto& d : options.pluginDirs) dirs.push_back(d.c_str());
    o.backend = options.backend.c_str();
    o.num_threads = options.numThreads;
    o.plugin_dirs = dirs.empty() ? nullptr : dirs.data();
    o.num_plugin_dirs = static_cast<int32_t>(dirs.size());
    o.search_default_dirs = options.searchDefaultDirs ? 1 : 0;
    o.log_level = options.logLevel;
    o.device = options.device;
    check(moe_context_create(&o, &ctx_));
  }
  ~Context() { moe_context_free(ctx_); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  std::string backend() const { return moe_context_backend(ctx_); }
  std::string device() const { return moe_context_device(ctx_); }

  int32_t pluginCount() const {
    int32_t count = 0;
    check(moe_plugins_count(ctx_, &count));
    return count;
  }
  PluginInfo plugin(int32_t index) const {
    moe_plugin_info info{};
    info.struct_size = sizeof info;
    check(moe_plugins_get(ctx_, index, &info));
    return {info.path, info.name, info.version, info.reason, info.kind, info.state, info.score, info.abi_version};
  }

#ifndef SWIG
  moe_context* get() const { return ctx_; }
#endif

 private:
  moe_context* ctx_ = nullptr;
};

}  // namespace moesdk
