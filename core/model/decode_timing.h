// MOE_DECODE_TIMING=1: where a recorded decode step's time goes, as far as the host can see it, with no
// GPU tools. Each replayed step is split into filling its inputs, the replay call (the launch), the wait
// for its outputs (the device time the host did not overlap, plus the copy back) and the host's own work
// since the previous step's outputs arrived (sampling, callbacks, building the next step). The means per
// step go to stderr at the end of each generate call, as one line.
#pragma once

#include <chrono>
#include <cstdint>

namespace moe {

class DecodeTiming {
 public:
  // Reads MOE_DECODE_TIMING again (a kept decode session serves later calls).
  void reload_settings();
  // The points of one step, in this order; nothing is kept while disabled.
  void step_begins();
  void inputs_filled();
  void replay_issued();
  void outputs_arrived();
  // Writes the means of the steps since the last report (none: nothing) and starts over.
  void report();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_ = false;
  int64_t steps_ = 0;
  double fill_us_ = 0, launch_us_ = 0, wait_us_ = 0, between_us_ = 0;
  int64_t betweens_ = 0;  // steps that had a previous one in the same call
  Clock::time_point begin_, filled_, issued_, last_arrival_;
  bool have_arrival_ = false;
};

}  // namespace moe
