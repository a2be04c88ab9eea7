#include "tensor/recorded_step.h"

#include "base/error.h"

namespace moe {

std::unique_ptr<RecordedStep> RecordedStep::record(Backend& backend, const std::function<void()>& body,
                                                   std::string* why) {
  if (!backend.can_record()) {
    if (why) *why = "backend '" + backend.name() + "' cannot record steps";
    return nullptr;
  }
  auto pool = std::make_unique<Backend::RecordingPool>();
  try {
    backend.begin_recording(pool.get());
  } catch (const Error& e) {
    if (why) *why = e.what();
    return nullptr;
  }
  std::string failure;
  try {
    body();
  } catch (const Error& e) {
    failure = e.what();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  std::string ended;
  moe_recorded_step* handle = backend.end_recording(&ended);
  if (!failure.empty() || !handle) {
    if (handle) backend.ops().destroy_step(backend.handle(), handle);
    backend.release_pool(pool.get());
    if (why) *why = failure.empty() ? ended : failure;
    return nullptr;
  }
  return std::unique_ptr<RecordedStep>(new RecordedStep(backend, std::move(pool), handle));
}

RecordedStep::RecordedStep(Backend& backend, std::unique_ptr<Backend::RecordingPool> pool, moe_recorded_step* handle)
    : backend_(backend), pool_(std::move(pool)), handle_(handle) {}

RecordedStep::~RecordedStep() {
  backend_.ops().destroy_step(backend_.handle(), handle_);  // waits for pending replays
  backend_.release_pool(pool_.get());
}

void RecordedStep::replay() { backend_.check(backend_.ops().replay_step(backend_.handle(), handle_), "replay_step"); }

}  // namespace moe
