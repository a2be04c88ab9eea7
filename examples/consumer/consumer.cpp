// A product that embeds the MoE SDK, built outside the SDK's tree against the installed SDK: with
// CMake (CMakeLists.txt: find_package(MoeSdk), MoeSdk::moe) or with pkg-config (Makefile).
//
//   consumer MODEL_DIR [PLUGIN_DIR]
//
// Lists the plugins libmoe found (PLUGIN_DIR first, then its own), then generates 8 tokens after 1 2 3.
#include <iostream>
#include <string>
#include <vector>

#include "moe/moe.hpp"

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: consumer MODEL_DIR [PLUGIN_DIR]\n";
    return 2;
  }
  moe::context::options options;
  if (argc > 2) options.plugin_dirs.push_back(argv[2]);
  moe::context ctx(options);

  static const char* const states[] = {"loaded", "rejected", "unusable"};
  for (const auto& p : ctx.plugins()) {
    std::cout << "plugin " << (p.name.empty() ? "?" : p.name) << ' '
              << (p.state >= 0 && p.state <= 2 ? states[p.state] : "unknown") << ' ' << p.path;
    if (!p.reason.empty()) std::cout << " (" << p.reason << ')';
    std::cout << '\n';
  }

  moe::model model(ctx, argv[1]);
  moe::generate_options g;
  g.max_new_tokens = 8;
  std::vector<int32_t> ids = model.generate({1, 2, 3}, g);
  std::cout << "generated " << ids.size() << " tokens on " << ctx.backend() << ':';
  for (int32_t id : ids) std::cout << ' ' << id;
  std::cout << '\n';
  return 0;
} catch (const moe::error& e) {
  std::cerr << e.what() << '\n';
  return 1;
}
