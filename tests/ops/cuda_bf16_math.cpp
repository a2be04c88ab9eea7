#include "cuda_bf16_math.h"

#include <cstdlib>

#include "moe/moe.h"
#include "plugins/registry.h"

namespace moe::testing {

std::unique_ptr<Backend> cuda_with_bf16_math(std::string& skip) {
  const char* dir = std::getenv("MOE_PLUGIN_DIR");
  PluginSearch search;
  search.application_dirs.push_back(dir && *dir ? dir : MOE_OPS_TEST_PLUGIN_DIR);
  search.use_environment = false;
  search.use_default_dir = false;
  for (const PluginRecord& p : discover_plugins(search)) {
    if (p.kind != MOE_PLUGIN_KIND_BACKEND || p.name != "cuda") continue;
    if (p.state != MOE_PLUGIN_STATE_LOADED) {
      skip = "the cuda backend cannot run here: " + p.reason;
      return nullptr;
    }
    const char* previous = std::getenv("MOE_CUDA_F32_MATH");
    const std::string saved = previous ? previous : "";
    setenv("MOE_CUDA_F32_MATH", "bf16", 1);
    moe_backend_options options{};
    options.struct_size = sizeof(options);
    auto backend = std::make_unique<Backend>(p.descriptor, options);
    if (previous)
      setenv("MOE_CUDA_F32_MATH", saved.c_str(), 1);
    else
      unsetenv("MOE_CUDA_F32_MATH");
    return backend;
  }
  skip = "no cuda backend plugin in the plugin folder";
  return nullptr;
}

}  // namespace moe::testing
