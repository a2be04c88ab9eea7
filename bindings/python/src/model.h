// moesdk.Model: a moe_model, loaded or created, with forward(), generate() and generate_iter().
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <vector>

#include "context.h"
#include "moe/moe.h"
#include "shared_handle.h"

namespace moesdk {

using TrainerHandle = SharedHandle<moe_trainer, moe_trainer_free>;
struct StreamState;

class Model {
 public:
  Model(moe_model* raw, std::shared_ptr<LogSink> log_sink);

  // A trainer made from this model: close() closes it first (a C trainer must not outlive its model).
  // Call while holding a use() of the model; ValueError if the model is being closed.
  void add_trainer(const std::shared_ptr<TrainerHandle>& trainer);
  // A generate_iter stream of this model: close() stops its worker first. ValueError if the model is
  // being closed.
  void add_stream(const std::shared_ptr<StreamState>& stream);
  // Closes the model's trainers and stops its streams, then frees the model once calls running on other
  // threads return. Call with the GIL released.
  void close();

  SharedHandle<moe_model, moe_model_free> handle;
  int64_t vocab_size;                 // rows of logits are this wide
  std::shared_ptr<LogSink> log_sink;  // the context's: it may log while this model lives

 private:
  std::mutex trainers_mutex_;  // guards trainers_, streams_ and closing_
  std::vector<std::weak_ptr<TrainerHandle>> trainers_;
  std::vector<std::weak_ptr<StreamState>> streams_;
  bool closing_ = false;  // set by close(): a trainer created meanwhile is refused
};

void bind_model(pybind11::module_& m);
// generate() and generate_iter() (generation.cpp), added to the Model class.
void bind_generation(pybind11::class_<Model>& model);
// generate_batch() (generate_batch.cpp).
void bind_generate_batch(pybind11::class_<Model>& model);

}  // namespace moesdk
