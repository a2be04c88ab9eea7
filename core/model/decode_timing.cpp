#include "model/decode_timing.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace moe {
namespace {

double micros(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

void DecodeTiming::reload_settings() {
  const char* env = std::getenv("MOE_DECODE_TIMING");
  enabled_ = env && std::strcmp(env, "1") == 0;
}

void DecodeTiming::step_begins() {
  if (!enabled_) return;
  begin_ = Clock::now();
  if (have_arrival_) {
    between_us_ += micros(begin_ - last_arrival_);
    ++betweens_;
  }
}

void DecodeTiming::inputs_filled() {
  if (enabled_) filled_ = Clock::now();
}

void DecodeTiming::replay_issued() {
  if (enabled_) issued_ = Clock::now();
}

void DecodeTiming::outputs_arrived() {
  if (!enabled_) return;
  last_arrival_ = Clock::now();
  have_arrival_ = true;
  fill_us_ += micros(filled_ - begin_);
  launch_us_ += micros(issued_ - filled_);
  wait_us_ += micros(last_arrival_ - issued_);
  ++steps_;
}

void DecodeTiming::report() {
  if (enabled_ && steps_ > 0) {
    const double n = static_cast<double>(steps_);
    std::fprintf(stderr,
                 "MOE_DECODE_TIMING: %lld recorded steps, means per step: fill inputs %.1f us, replay call %.1f us, "
                 "wait for outputs %.1f us, host work between steps %.1f us\n",
                 static_cast<long long>(steps_), fill_us_ / n, launch_us_ / n, wait_us_ / n,
                 betweens_ ? between_us_ / static_cast<double>(betweens_) : 0.0);
  }
  steps_ = betweens_ = 0;
  fill_us_ = launch_us_ = wait_us_ = between_us_ = 0;
  have_arrival_ = false;
}

}  // namespace moe
