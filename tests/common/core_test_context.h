// The core-level context of tests that run the engine below the C API: the backend under test is
// MOE_TEST_BACKEND (scripts/gpu-check sets "cuda"), else cpu; plugins only from MOE_PLUGIN_DIR (set by
// the test CMake).
#pragma once

#include <cstdlib>
#include <memory>

#include "context.h"

namespace moe::testing {

inline std::shared_ptr<Context> core_test_context() {
  ContextOptions o;
  const char* backend = std::getenv("MOE_TEST_BACKEND");
  o.backend = backend && *backend ? backend : "cpu";
  o.search.application_dirs = {std::getenv("MOE_PLUGIN_DIR")};
  o.search.use_default_dir = o.search.use_environment = false;
  return std::make_shared<Context>(std::move(o));
}

}  // namespace moe::testing
