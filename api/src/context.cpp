// moe_context_*: options, creation (plugin discovery + backend choice) and the plugin list.
#include <cstring>

#include "guard.h"
#include "handles.h"

using moe::api::guarded;
using moe::api::require_arg;

extern "C" {

void moe_context_options_init_sized(moe_context_options* options, uint32_t struct_size) {
  moe_context_options d{};
  d.backend = "auto";
  d.log_level = MOE_LOG_WARN;
  d.search_default_dirs = 1;
  moe::api::fill_options(options, struct_size, d);
}

moe_status moe_context_create(const moe_context_options* options, moe_context** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_context_create: out is NULL");
    *out = nullptr;
    moe_context_options o{};
    moe_context_options_init(&o);
    moe::api::read_options(options, o, "moe_context_create");
    moe::ContextOptions co;
    if (o.backend && *o.backend) co.backend = o.backend;
    require_arg(co.backend == "auto" || co.backend == "cpu" || co.backend == "cuda" || !co.backend.empty(),
                "moe_context_create: backend must be \"cpu\", \"cuda\" or \"auto\"");
    require_arg(o.num_threads >= 0, "moe_context_create: num_threads must be >= 0");
    require_arg(o.num_plugin_dirs >= 0 && (o.num_plugin_dirs == 0 || o.plugin_dirs),
                "moe_context_create: plugin_dirs is NULL but num_plugin_dirs > 0");
    co.num_threads = o.num_threads;
    co.device = o.device;
    for (int32_t i = 0; i < o.num_plugin_dirs; ++i) {
      require_arg(o.plugin_dirs[i] != nullptr, "moe_context_create: plugin_dirs has a NULL entry");
      co.search.application_dirs.emplace_back(o.plugin_dirs[i]);
    }
    co.search.use_environment = co.search.use_default_dir = o.search_default_dirs != 0;
    co.logger.level = o.log_level;
    co.logger.sink = o.log_callback;
    co.logger.user_data = o.log_user_data;
    auto ctx = std::make_unique<moe_context>();
    ctx->impl = std::make_shared<moe::Context>(std::move(co));
    *out = ctx.release();
  });
}

void moe_context_free(moe_context* ctx) { delete ctx; }

const char* moe_context_backend(const moe_context* ctx) {
  return ctx ? ctx->impl->backend().name().c_str() : "";
}

const char* moe_context_device(const moe_context* ctx) {
  return ctx ? ctx->impl->backend().description().c_str() : "";
}

moe_status moe_plugins_count(const moe_context* ctx, int32_t* count) {
  return guarded([&] {
    require_arg(ctx && count, "moe_plugins_count: ctx and count must not be NULL");
    *count = static_cast<int32_t>(ctx->impl->plugins().size());
  });
}

moe_status moe_plugins_get(const moe_context* ctx, int32_t index, moe_plugin_info* info) {
  return guarded([&] {
    require_arg(ctx && info, "moe_plugins_get: ctx and info must not be NULL");
    const auto& plugins = ctx->impl->plugins();
    if (index < 0 || index >= static_cast<int32_t>(plugins.size()))
      moe::fail(MOE_ERR_INVALID_ARGUMENT, "moe_plugins_get: index " + std::to_string(index) + " is outside [0, " +
                                              std::to_string(plugins.size()) + ")");
    require_arg(info->struct_size >= offsetof(moe_plugin_info, reason) + sizeof(void*),
                "moe_plugins_get: info->struct_size is too small");
    const auto& p = plugins[index];
    moe_plugin_info r{};
    r.struct_size = info->struct_size;
    r.path = p.path.c_str();
    r.name = p.name.c_str();
    r.version = p.version.c_str();
    r.kind = p.kind;
    r.state = p.state;
    r.score = p.score;
    r.abi_version = p.abi_version;
    r.reason = p.reason.c_str();
    std::memcpy(info, &r, std::min<size_t>(info->struct_size, sizeof(r)));
  });
}

}  // extern "C"
