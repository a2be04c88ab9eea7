// moesdk.Tokenizer: one loaded from tokenizer.json (owned), or a model's own (borrowed from it).
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>

#include "context.h"
#include "moe/moe.h"
#include "shared_handle.h"

namespace moesdk {

class Model;

class Tokenizer {
 public:
  Tokenizer(moe_tokenizer* owned, std::shared_ptr<LogSink> log_sink);
  // The tokenizer of a moesdk.Model: usable while that model is open (it is looked up again for each
  // call, under the model's handle, so closing the model cannot leave it dangling).
  static std::unique_ptr<Tokenizer> of_model(pybind11::object model);

  // Runs use(const moe_tokenizer*) while the tokenizer is valid; ValueError once closed.
  template <typename Use>
  void with(Use&& use) const;
  // Frees an owned tokenizer (after running calls return); a borrowed one just stops working.
  void close();

 private:
  Tokenizer() = default;

  std::atomic<bool> closed_{false};
  std::unique_ptr<SharedHandle<moe_tokenizer, moe_tokenizer_free>> owned_;
  pybind11::object model_object_;  // borrowed: the model that owns the tokenizer
  const Model* model_ = nullptr;
  std::shared_ptr<LogSink> log_sink_;
};

void bind_tokenizer(pybind11::module_& m);

}  // namespace moesdk
