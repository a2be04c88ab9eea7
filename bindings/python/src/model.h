// moesdk.Model: a loaded moe_model with forward(), generate() and generate_iter().
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

#include "context.h"
#include "moe/moe.h"
#include "shared_handle.h"

namespace moesdk {

class Model {
 public:
  Model(moe_model* raw, std::shared_ptr<LogSink> log_sink);

  SharedHandle<moe_model, moe_model_free> handle;
  int64_t vocab_size;                 // rows of logits are this wide
  std::shared_ptr<LogSink> log_sink;  // the context's: it may log while this model lives
};

void bind_model(pybind11::module_& m);
// generate() and generate_iter() (generation.cpp), added to the Model class.
void bind_generation(pybind11::class_<Model>& model);

}  // namespace moesdk
