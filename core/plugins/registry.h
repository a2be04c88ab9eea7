// Plugin discovery and loading (shared/DESIGN.md, "The plugin ABI").
//
// Candidates are libmoe_backend_*.so and libmoe_modality_*.so files in, in this order: the
// directories the application passes, MOE_PLUGIN_PATH (colon-separated), and moe/plugins next to
// libmoe. Each is opened with Boost.DLL, its entry symbol called once per process, and its descriptor
// checked (ABI major, struct sizes, kind, score). Libraries stay loaded for the life of the process.
// Every candidate is recorded with its state and, when refused, the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe {

struct PluginRecord {
  std::string path;
  std::string name;
  std::string version;
  std::string reason;  // why rejected or unusable; empty when loaded
  int32_t kind = 0;
  int32_t state = 1;   // MOE_PLUGIN_STATE_* of moe.h
  int32_t score = 0;
  uint32_t abi_version = 0;
  const moe_plugin_descriptor* descriptor = nullptr;  // set when state is LOADED or UNUSABLE
};

struct PluginSearch {
  std::vector<std::string> application_dirs;
  bool use_environment = true;   // MOE_PLUGIN_PATH
  bool use_default_dir = true;   // moe/plugins next to libmoe
};

// The directories a search covers, in order, without duplicates.
std::vector<std::string> plugin_search_dirs(const PluginSearch& search);

// Finds and loads every candidate. Never throws for a bad plugin: it is recorded as rejected, and
// the caller logs it.
std::vector<PluginRecord> discover_plugins(const PluginSearch& search);

// Loads one library file as a plugin (also used by discover_plugins).
PluginRecord load_plugin(const std::string& path);

// The folder libmoe was loaded from.
std::string library_directory();

}  // namespace moe
