#include "recording.h"

#include "backend_ops.h"
#include "cpu_backend.h"
#include "errors.h"

namespace moe_cpu {

bool Recorder::recording_here() const {
  if (recording_threads_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mutex_);
  return tapes_.count(std::this_thread::get_id()) != 0;
}

void Recorder::begin() {
  std::lock_guard lock(mutex_);
  if (!tapes_.emplace(std::this_thread::get_id(), std::vector<RecordedOp>()).second)
    invalid("record_begin: this thread is already recording on this instance");
  recording_threads_.fetch_add(1, std::memory_order_release);
}

std::vector<RecordedOp> Recorder::end() {
  std::lock_guard lock(mutex_);
  auto it = tapes_.find(std::this_thread::get_id());
  if (it == tapes_.end()) invalid("record_end: this thread is not recording on this instance");
  std::vector<RecordedOp> ops = std::move(it->second);
  tapes_.erase(it);
  recording_threads_.fetch_sub(1, std::memory_order_release);
  return ops;
}

void Recorder::append(RecordedOp op) {
  std::lock_guard lock(mutex_);
  tapes_.at(std::this_thread::get_id()).push_back(std::move(op));
}

void Recorder::set_replay_error(moe_status status, std::string message) {
  std::lock_guard lock(mutex_);
  if (replay_status_ != MOE_OK) return;  // the first failure is the one that explains the rest
  replay_status_ = status;
  replay_error_ = std::move(message);
}

void Recorder::raise_replay_error() {
  std::lock_guard lock(mutex_);
  if (replay_status_ == MOE_OK) return;
  const moe_status status = replay_status_;
  std::string message = std::move(replay_error_);
  replay_status_ = MOE_OK;
  replay_error_.clear();
  fail(status, std::move(message));
}

}  // namespace moe_cpu

struct moe_recorded_step {
  std::vector<moe_cpu::RecordedOp> ops;
};

namespace moe_cpu {

moe_status cpu_record_begin(moe_backend* be) {
  return guarded([&] {
    if (!be) invalid("backend instance is null");
    be->recorder.begin();
  });
}

moe_status cpu_record_end(moe_backend* be, moe_recorded_step** out) {
  return guarded([&] {
    if (!be) invalid("backend instance is null");
    if (!out) invalid("record_end: out is null");
    *out = nullptr;
    auto step = std::make_unique<moe_recorded_step>();
    step->ops = be->recorder.end();
    *out = step.release();
  });
}

moe_status cpu_replay_step(moe_backend* be, moe_recorded_step* step) {
  return guarded([&] {
    if (!be) invalid("backend instance is null");
    if (!step) invalid("replay_step: step is null");
    if (be->recorder.recording_here()) invalid("replay_step: this thread is recording (a replay is not recordable)");
    for (size_t i = 0; i < step->ops.size(); ++i) {
      const moe_status status = step->ops[i].run();
      if (status == MOE_OK) continue;
      be->recorder.set_replay_error(status, std::string("a replayed step's op ") + std::to_string(i) + " (" +
                                                step->ops[i].name + ") failed: " + last_error_message());
      return;  // the rest would read what the failed op did not write
    }
  });
}

void cpu_destroy_step(moe_backend*, moe_recorded_step* step) { delete step; }

}  // namespace moe_cpu
