// A sequence of backend ops recorded once and replayed as one launch (plugin ABI 1.2; a CUDA graph on
// the CUDA backend). A replay reads whatever the recorded tensors hold at the time, so the caller keeps
// a step's inputs and outputs in tensors made before recording, copies new inputs into them before each
// replay and reads the outputs after. The blocks the recorded ops allocated stay the step's own until it
// is destroyed (Backend::RecordingPool).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "tensor/backend.h"

namespace moe {

class RecordedStep {
 public:
  // Records the ops `body` calls on `backend` from this thread. Returns nullptr, with the reason in `why`,
  // when the backend cannot record or something failed while recording (nothing has run then: recording
  // enqueues no work), so the caller can run the same step op by op.
  static std::unique_ptr<RecordedStep> record(Backend& backend, const std::function<void()>& body, std::string* why);
  ~RecordedStep();
  RecordedStep(const RecordedStep&) = delete;
  RecordedStep& operator=(const RecordedStep&) = delete;

  // Enqueues the recorded ops; returns without waiting, like any op.
  void replay();

 private:
  RecordedStep(Backend& backend, std::unique_ptr<Backend::RecordingPool> pool, moe_recorded_step* handle);
  Backend& backend_;
  std::unique_ptr<Backend::RecordingPool> pool_;
  moe_recorded_step* handle_;
};

}  // namespace moe
