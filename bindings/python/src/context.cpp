#include "context.h"

#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "errors.h"

namespace py = pybind11;

namespace moesdk {
namespace {

moe_context* create_context(const moe_context_options& options) {
  moe_context* raw = nullptr;
  py::gil_scoped_release nogil;  // plugin discovery loads libraries; the log callback takes the GIL
  check(moe_context_create(&options, &raw));
  return raw;
}

struct PluginInfo {
  std::string path, name, version, reason;
  int32_t kind, state, score;
  uint32_t abi_version;
};

std::vector<PluginInfo> list_plugins(const Context& ctx) {
  auto use = ctx.handle.use();
  int32_t count = 0;
  check(moe_plugins_count(use.get(), &count));
  std::vector<PluginInfo> plugins;
  for (int32_t i = 0; i < count; ++i) {
    moe_plugin_info info{};
    info.struct_size = sizeof info;
    check(moe_plugins_get(use.get(), i, &info));
    plugins.push_back({info.path, info.name, info.version, info.reason, info.kind, info.state, info.score,
                       info.abi_version});
  }
  return plugins;
}

// Context(backend=..., ...): every option left as None keeps moe_context_options_init's default.
std::unique_ptr<Context> make_context(std::optional<std::string> backend, std::optional<int32_t> num_threads,
                                      std::optional<std::vector<std::string>> plugin_dirs,
                                      std::optional<bool> search_default_dirs, std::optional<int32_t> log_level,
                                      std::optional<py::function> log_callback, std::optional<int32_t> device) {
  moe_context_options o;
  moe_context_options_init(&o);
  if (backend) o.backend = backend->c_str();
  if (num_threads) o.num_threads = *num_threads;
  std::vector<const char*> dirs;
  if (plugin_dirs) {
    for (const auto& d : *plugin_dirs) dirs.push_back(d.c_str());
    o.plugin_dirs = dirs.data();
    o.num_plugin_dirs = static_cast<int32_t>(dirs.size());
  }
  if (search_default_dirs) o.search_default_dirs = *search_default_dirs ? 1 : 0;
  if (log_level) o.log_level = *log_level;
  if (device) o.device = *device;
  std::shared_ptr<LogSink> sink;
  if (log_callback) {
    sink = std::make_shared<LogSink>(LogSink{std::move(*log_callback)});
    o.log_callback = &LogSink::deliver;
    o.log_user_data = sink.get();
  }
  return std::make_unique<Context>(o, std::move(sink));
}

void close_context(Context& ctx) {
  py::gil_scoped_release nogil;  // waits for calls on other threads, which may need the GIL to log
  ctx.handle.close();
}

}  // namespace

void LogSink::deliver(int32_t level, const char* message, void* user_data) {
  py::gil_scoped_acquire gil;
  try {
    static_cast<LogSink*>(user_data)->callback(level, py::str(message));
  } catch (py::error_already_set& e) {
    // A log line cannot fail the call that logged it: report the callback's error like Python does
    // for errors in __del__.
    e.discard_as_unraisable("moesdk log callback");
  }
}

Context::Context(const moe_context_options& options, std::shared_ptr<LogSink> sink)
    : handle(create_context(options), "Context"), log_sink(std::move(sink)) {}

void bind_context(py::module_& m) {
  py::class_<PluginInfo>(m, "PluginInfo", "One plugin library that discovery found, loaded or refused.")
      .def_readonly("path", &PluginInfo::path)
      .def_readonly("name", &PluginInfo::name)
      .def_readonly("version", &PluginInfo::version)
      .def_readonly("kind", &PluginInfo::kind, "PLUGIN_KIND_BACKEND, PLUGIN_KIND_MODALITY or 0 (unknown)")
      .def_readonly("state", &PluginInfo::state, "PLUGIN_LOADED, PLUGIN_REJECTED or PLUGIN_UNUSABLE")
      .def_readonly("score", &PluginInfo::score)
      .def_readonly("abi_version", &PluginInfo::abi_version)
      .def_readonly("reason", &PluginInfo::reason, "why it was refused or is unusable (\"\" if loaded)")
      .def("__repr__", [](const PluginInfo& p) {
        return "PluginInfo(name='" + p.name + "', state=" + std::to_string(p.state) + ", path='" + p.path + "')";
      });

  py::class_<Context>(m, "Context", R"doc(
A backend chosen among the plugins found at run time. Options left as None keep the library's
defaults: backend "auto" (the highest score), one thread per core, plugin_dirs searched before
MOE_PLUGIN_PATH and <libdir>/moe/plugins. log_callback(level, message) receives the library's log
lines at or below log_level (LOG_ERROR .. LOG_DEBUG), from any thread.

Models and tokenizers made from a context keep what they need alive: closing the context early is safe.
)doc")
      .def(py::init(&make_context), py::kw_only(), py::arg("backend") = py::none(), py::arg("num_threads") = py::none(),
           py::arg("plugin_dirs") = py::none(), py::arg("search_default_dirs") = py::none(),
           py::arg("log_level") = py::none(), py::arg("log_callback") = py::none(), py::arg("device") = py::none())
      .def_property_readonly("backend",
                             [](const Context& c) { return std::string(moe_context_backend(c.handle.use().get())); },
                             "the backend's name: \"cpu\", \"cuda\"")
      .def_property_readonly("device",
                             [](const Context& c) { return std::string(moe_context_device(c.handle.use().get())); },
                             "a description of the backend's device")
      .def("plugins", &list_plugins, "Every plugin library discovery found, with its state and reason.")
      .def("close", &close_context, "Frees the context now (models made from it keep working).")
      .def_property_readonly("closed", [](const Context& c) { return c.handle.closed(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Context& c, py::args) { close_context(c); });

  m.attr("LOG_ERROR") = MOE_LOG_ERROR;
  m.attr("LOG_WARN") = MOE_LOG_WARN;
  m.attr("LOG_INFO") = MOE_LOG_INFO;
  m.attr("LOG_DEBUG") = MOE_LOG_DEBUG;
  m.attr("PLUGIN_LOADED") = MOE_PLUGIN_STATE_LOADED;
  m.attr("PLUGIN_REJECTED") = MOE_PLUGIN_STATE_REJECTED;
  m.attr("PLUGIN_UNUSABLE") = MOE_PLUGIN_STATE_UNUSABLE;
  m.attr("PLUGIN_KIND_BACKEND") = 1;
  m.attr("PLUGIN_KIND_MODALITY") = 2;
}

}  // namespace moesdk
