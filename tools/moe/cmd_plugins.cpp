#include <cstdio>

#include "commands.h"

namespace cli {

int cmd_plugins(Args& args) {
  moe::context::options o;
  o.backend = args.value("backend", "auto");
  o.plugin_dirs = args.values("plugin-dir");
  o.log_level = MOE_LOG_ERROR;  // the list below says everything the log would
  args.finish();
  moe::context ctx(o);
  static const char* kinds[] = {"?", "backend", "modality"};
  static const char* states[] = {"loaded", "refused", "unusable"};
  for (const auto& p : ctx.plugins()) {
    const char* kind = kinds[p.kind >= 0 && p.kind <= 2 ? p.kind : 0];
    const char* state = states[p.state >= 0 && p.state <= 2 ? p.state : 1];
    std::printf("%-9s %-9s %-10s %-10s %s\n", state, kind, p.name.empty() ? "-" : p.name.c_str(),
                p.version.empty() ? "-" : p.version.c_str(), p.path.c_str());
    if (!p.reason.empty()) std::printf("          reason: %s\n", p.reason.c_str());
  }
  std::printf("backend in use: %s (%s)\n", ctx.backend().c_str(), ctx.device().c_str());
  return 0;
}

}  // namespace cli
