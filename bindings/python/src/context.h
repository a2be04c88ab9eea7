// moesdk.Context: a moe_context (backend choice, threads, plugins) and its optional log callback.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "moe/moe.h"
#include "shared_handle.h"

namespace moesdk {

// A context's Python log callback. The C context calls deliver() with this as user_data, from any
// thread, for as long as the C context lives; models and tokenizers made from the context keep the
// C context alive, so they share ownership of the sink too.
struct LogSink {
  pybind11::function callback;
  static void deliver(int32_t level, const char* message, void* user_data);
};

class Context {
 public:
  explicit Context(const moe_context_options& options, std::shared_ptr<LogSink> log_sink);

  SharedHandle<moe_context, moe_context_free> handle;
  std::shared_ptr<LogSink> log_sink;  // null without a callback
};

void bind_context(pybind11::module_& m);

}  // namespace moesdk
