// The extension moesdk._moesdk: the public C ABI (moe.h) for Python. Each class is bound in its own
// file; a new part of the C ABI adds one bind_* function and one line here.
#include <pybind11/pybind11.h>

#include "context.h"
#include "errors.h"
#include "model.h"
#include "token_stream.h"
#include "tokenizer.h"
#include "trainer.h"

namespace py = pybind11;

PYBIND11_MODULE(_moesdk, m) {
  m.doc() = "MoE SDK: load, run, train and fine-tune mixture-of-experts models through libmoe's C ABI.";
  m.def("version", &moe_version, "The version of the libmoe actually loaded (\"MAJOR.MINOR.PATCH\").");
  m.attr("HEADER_VERSION") = py::make_tuple(MOE_VERSION_MAJOR, MOE_VERSION_MINOR, MOE_VERSION_PATCH);
  moesdk::register_errors(m);
  moesdk::bind_context(m);
  moesdk::bind_tokenizer(m);
  moesdk::bind_token_stream(m);
  moesdk::bind_model(m);
  m.attr("GENERATE_CONTINUE") = MOE_GENERATE_CONTINUE;
  m.attr("GENERATE_STOP_ROW") = MOE_GENERATE_STOP_ROW;
  m.attr("GENERATE_STOP_ALL") = MOE_GENERATE_STOP_ALL;
  moesdk::bind_trainer(m);
}
