#include "plugins/registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include <boost/dll/shared_library.hpp>  // BOOST_DLL_USE_STD_FS comes from the build

#include "moe/moe.h"
#include "plugins/host_api.h"

namespace fs = std::filesystem;

namespace moe {
namespace {

bool is_candidate_name(const std::string& file) {
  auto starts = [&](const char* p) { return file.rfind(p, 0) == 0; };
  return (starts("libmoe_backend_") || starts("libmoe_modality_")) && file.size() > 3 &&
         file.compare(file.size() - 3, 3, ".so") == 0;
}

std::string abi_string(uint32_t v) {
  return std::to_string(MOE_PLUGIN_ABI_MAJOR_OF(v)) + "." + std::to_string(MOE_PLUGIN_ABI_MINOR_OF(v));
}

// Size a kind's ops table must at least have: everything ABI 1.0 defined.
size_t minimum_ops_size(int32_t kind) {
  if (kind == MOE_PLUGIN_KIND_BACKEND) return offsetof(moe_backend_ops, attention) + sizeof(void*);
  return offsetof(moe_modality_ops, modality) + sizeof(void*);
}

// Checks a descriptor the entry returned; fills record or sets its reason.
void validate(const moe_plugin_descriptor* d, PluginRecord& r) {
  if (!d) {
    r.reason = "its entry function " MOE_PLUGIN_ENTRY_SYMBOL " returned no descriptor";
    return;
  }
  if (d->struct_size < offsetof(moe_plugin_descriptor, ops) + sizeof(void*)) {
    r.reason = "its descriptor is too small (" + std::to_string(d->struct_size) + " bytes)";
    return;
  }
  r.abi_version = d->abi_version;
  r.name = d->name ? d->name : "";
  r.version = d->version ? d->version : "";
  r.kind = d->kind;
  if (MOE_PLUGIN_ABI_MAJOR_OF(d->abi_version) != MOE_PLUGIN_ABI_MAJOR) {
    r.reason = "it was built for plugin ABI " + abi_string(d->abi_version) + " but this libmoe speaks ABI " +
               abi_string(MOE_PLUGIN_ABI_VERSION) + " (major versions must match)";
    return;
  }
  if (d->kind != MOE_PLUGIN_KIND_BACKEND && d->kind != MOE_PLUGIN_KIND_MODALITY) {
    r.reason = "its kind " + std::to_string(d->kind) + " is neither backend (1) nor modality (2)";
    return;
  }
  if (r.name.empty()) {
    r.reason = "it has no name";
    return;
  }
  auto ops_size = d->ops ? *static_cast<const uint32_t*>(d->ops) : 0u;
  if (ops_size < minimum_ops_size(d->kind)) {
    r.reason = "its operations table is missing or too small (" + std::to_string(ops_size) + " bytes, need " +
               std::to_string(minimum_ops_size(d->kind)) + ")";
    return;
  }
  r.score = d->score ? d->score() : 1;
  r.descriptor = d;
  if (r.score <= 0) {
    r.state = MOE_PLUGIN_STATE_UNUSABLE;
    r.reason = "its score is 0: it cannot run on this machine";
    return;
  }
  r.state = MOE_PLUGIN_STATE_LOADED;
}

// Loaded libraries by canonical path: opened and entered once per process, never unloaded.
struct LoadedLibraries {
  std::mutex mutex;
  std::map<std::string, PluginRecord> by_path;
  std::vector<std::unique_ptr<boost::dll::shared_library>> keep_alive;
};

LoadedLibraries& loaded() {
  static auto* libs = new LoadedLibraries();  // never destroyed: plugins outlive static destructors
  return *libs;
}

}  // namespace

std::string library_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&library_directory), &info) && info.dli_fname)
    return fs::path(info.dli_fname).parent_path().string();
  return {};
}

std::vector<std::string> plugin_search_dirs(const PluginSearch& search) {
  std::vector<std::string> dirs;
  auto add = [&](const std::string& d) {
    if (!d.empty() && std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  };
  for (const auto& d : search.application_dirs) add(d);
  if (search.use_environment) {
    if (const char* env = std::getenv("MOE_PLUGIN_PATH")) {
      std::stringstream ss(env);
      std::string part;
      while (std::getline(ss, part, ':')) add(part);
    }
  }
  if (search.use_default_dir) {
    auto lib = library_directory();
    if (!lib.empty()) add((fs::path(lib) / "moe" / "plugins").string());
  }
  return dirs;
}

PluginRecord load_plugin(const std::string& path) {
  std::error_code ec;
  auto canonical = fs::weakly_canonical(path, ec).string();
  if (ec) canonical = path;
  auto& libs = loaded();
  std::lock_guard lock(libs.mutex);
  if (auto it = libs.by_path.find(canonical); it != libs.by_path.end()) return it->second;

  PluginRecord r;
  r.path = canonical;
  r.state = MOE_PLUGIN_STATE_REJECTED;
  auto lib = std::make_unique<boost::dll::shared_library>();
  boost::dll::fs::error_code load_ec;
  lib->load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, load_ec);
  if (load_ec || !lib->is_loaded()) {
    const char* why = dlerror();
    r.reason = "it could not be loaded: " + (why ? std::string(why) : load_ec.message());
  } else if (!lib->has(MOE_PLUGIN_ENTRY_SYMBOL)) {
    r.reason = "it does not export the entry symbol " MOE_PLUGIN_ENTRY_SYMBOL;
  } else {
    auto entry = lib->get<const moe_plugin_descriptor*(const moe_host_api*)>(MOE_PLUGIN_ENTRY_SYMBOL);
    validate(entry(host_api()), r);
    if (!r.reason.empty() && r.state == MOE_PLUGIN_STATE_REJECTED) take_plugin_error();
  }
  // Keep every library that loaded: a rejected one may still be referenced by nothing, but unloading
  // code a plugin registered (atexit, thread-locals) is never safe.
  if (lib->is_loaded()) libs.keep_alive.push_back(std::move(lib));
  libs.by_path[canonical] = r;
  return r;
}

std::vector<PluginRecord> discover_plugins(const PluginSearch& search) {
  std::vector<PluginRecord> records;
  std::map<std::pair<int32_t, std::string>, std::string> first_by_name;
  for (const auto& dir : plugin_search_dirs(search)) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      auto file = entry.path().filename().string();
      if (is_candidate_name(file)) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      auto r = load_plugin(file);
      if (r.state != MOE_PLUGIN_STATE_REJECTED) {
        auto key = std::make_pair(r.kind, r.name);
        if (auto it = first_by_name.find(key); it != first_by_name.end()) {
          if (it->second == r.path) continue;  // the same file found through two directories
          r.state = MOE_PLUGIN_STATE_REJECTED;
          r.reason = "a plugin of the same name was found first at " + it->second;
          r.descriptor = nullptr;
        } else {
          first_by_name[key] = r.path;
        }
      }
      records.push_back(std::move(r));
    }
  }
  return records;
}

}  // namespace moe
