// moesdk.Trainer: a moe_trainer that trains or fine-tunes a moesdk.Model in place, and TrainStats.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>

#include "model.h"
#include "moe/moe.h"

namespace moesdk {

class Trainer {
 public:
  Trainer(pybind11::object model, moe_trainer* raw, int32_t task);

  pybind11::object model_object;  // declared first: the trainer is freed before the model reference goes
  Model& model;
  std::shared_ptr<TrainerHandle> handle;  // shared with the model, which closes it before itself
  int32_t task;                           // MOE_TASK_*: what labels hold
  // A C trainer belongs to one thread at a time: calls from several Python threads take turns. It is
  // recursive because a progress callback may call evaluate() on its own trainer.
  std::recursive_mutex one_call;
};

void bind_trainer(pybind11::module_& m);

}  // namespace moesdk
