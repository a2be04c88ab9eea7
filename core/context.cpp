#include "context.h"

#include <algorithm>

#include "base/error.h"
#include "moe/moe.h"

namespace moe {
namespace {

std::string describe_candidates(const std::vector<PluginRecord>& plugins, int32_t kind) {
  std::string s;
  for (const auto& p : plugins) {
    if (p.kind != kind && p.kind != 0) continue;
    s += "\n  " + p.path + ": " + (p.state == MOE_PLUGIN_STATE_LOADED ? "loaded" : p.reason);
  }
  return s;
}

std::string searched(const PluginSearch& search) {
  std::string s;
  for (const auto& d : plugin_search_dirs(search)) s += (s.empty() ? "" : ", ") + d;
  return s.empty() ? "(no directories)" : s;
}

}  // namespace

Context::Context(ContextOptions options) : options_(std::move(options)) {
  plugins_ = discover_plugins(options_.search);
  for (const auto& p : plugins_) {
    if (p.state == MOE_PLUGIN_STATE_REJECTED)
      options_.logger.write(MOE_LOG_WARN, "plugin " + p.path + " refused: " + p.reason);
    else if (p.state == MOE_PLUGIN_STATE_UNUSABLE)
      options_.logger.write(MOE_LOG_INFO, "plugin " + p.path + " (" + p.name + ") not used: " + p.reason);
    else
      options_.logger.write(MOE_LOG_DEBUG, "plugin " + p.path + " (" + p.name + " " + p.version + ") loaded");
  }

  const PluginRecord* chosen = nullptr;
  const auto& want = options_.backend;
  for (const auto& p : plugins_) {
    if (p.kind != MOE_PLUGIN_KIND_BACKEND || p.state != MOE_PLUGIN_STATE_LOADED) continue;
    if (want == "auto" ? (!chosen || p.score > chosen->score) : p.name == want) {
      chosen = &p;
      if (want != "auto") break;
    }
  }
  if (!chosen) {
    std::string what = want == "auto" ? "no usable backend plugin was found" : "backend '" + want + "' is not available";
    const PluginRecord* named = nullptr;
    for (const auto& p : plugins_)
      if (p.kind == MOE_PLUGIN_KIND_BACKEND && p.name == want) named = &p;
    if (named) what += ": " + named->path + " " + named->reason;
    fail(MOE_ERR_PLUGIN, what + " (searched " + searched(options_.search) + ")" +
                             describe_candidates(plugins_, MOE_PLUGIN_KIND_BACKEND));
  }
  moe_backend_options bo{};
  bo.struct_size = sizeof(bo);
  bo.num_threads = options_.num_threads;
  bo.device = options_.device;
  backend_ = std::make_unique<Backend>(chosen->descriptor, bo);
  options_.logger.write(MOE_LOG_INFO, "backend " + backend_->name() + ": " + backend_->description());
}

const moe_modality_ops& Context::modality(const std::string& modality) const {
  for (const auto& p : plugins_) {
    if (p.kind != MOE_PLUGIN_KIND_MODALITY || p.state != MOE_PLUGIN_STATE_LOADED) continue;
    auto* ops = static_cast<const moe_modality_ops*>(p.descriptor->ops);
    if (ops->modality && modality == ops->modality) return *ops;
  }
  fail(MOE_ERR_PLUGIN, "no '" + modality + "' modality plugin was found (searched " + searched(options_.search) +
                           ")" + describe_candidates(plugins_, MOE_PLUGIN_KIND_MODALITY));
}

}  // namespace moe
