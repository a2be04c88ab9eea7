// Recorded steps on the CPU (plugin ABI 1.2). Recording keeps, per recording thread, a list of the ops
// it calls with copies of their arguments (tensor descriptors by value, data pointers as given); a
// replay calls them again in order. On the CPU this saves the host's per-op work between steps (the
// core's step building, allocations, argument checks) and lets the core's replay path run everywhere.
//
// Ops check their arguments when they run, so a recorded op's bad index or shape fails its replay: the
// replay stops there and the next copy_to_host or synchronize on the instance fails with the op's name
// and message (the ABI's rule for indices met during a replay).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe_cpu {

struct RecordedOp {
  const char* name;
  std::function<moe_status()> run;
};

class Recorder {
 public:
  // True when the calling thread is recording on this instance.
  bool recording_here() const;
  void begin();
  std::vector<RecordedOp> end();
  void append(RecordedOp op);
  // A replay's failure, kept for the next call that waits (copy_to_host, synchronize).
  void set_replay_error(moe_status status, std::string message);
  // Throws the kept failure, if any, and clears it.
  void raise_replay_error();

 private:
  std::atomic<int> recording_threads_{0};
  mutable std::mutex mutex_;
  std::unordered_map<std::thread::id, std::vector<RecordedOp>> tapes_;
  moe_status replay_status_ = MOE_OK;
  std::string replay_error_;
};

// A copy of one op argument that lives as long as the recording: tensor descriptors by value (the caller's
// moe_tensor may be a temporary), everything else as given.
template <typename T>
struct HeldArg {
  explicit HeldArg(T v) : value(v) {}
  T get() { return value; }
  T value;
};
template <>
struct HeldArg<const moe_tensor*> {
  explicit HeldArg(const moe_tensor* t) : null(t == nullptr), copy(t ? *t : moe_tensor{}) {}
  const moe_tensor* get() { return null ? nullptr : &copy; }
  bool null;
  moe_tensor copy;
};
template <>
struct HeldArg<moe_tensor*> {
  explicit HeldArg(moe_tensor* t) : null(t == nullptr), copy(t ? *t : moe_tensor{}) {}
  moe_tensor* get() { return null ? nullptr : &copy; }
  bool null;
  moe_tensor copy;
};

}  // namespace moe_cpu
