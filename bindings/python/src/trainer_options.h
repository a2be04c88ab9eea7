// moesdk.Trainer's keyword options <-> moe_trainer_options. The scalar fields come from the shared
// list in bindings/common/moesdk_trainer_fields.h (a field appended to moe.h is one line there); the
// pointer + count pairs (freeze_experts, freeze_patterns) are kept here, where the struct points.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "moe/moe.h"

namespace moesdk {

struct TrainerOptions {
  moe_trainer_options c;  // freeze_experts and freeze_patterns point into the vectors below
  std::vector<int32_t> freeze_experts;
  std::vector<std::string> freeze_pattern_strings;
  std::vector<const char*> freeze_patterns;

  TrainerOptions(const TrainerOptions&) = delete;
  TrainerOptions& operator=(const TrainerOptions&) = delete;
  TrainerOptions() = default;
};

// Fills options from keyword arguments (names as in moe.h); every option not given keeps
// moe_trainer_options_init's default. TypeError names an unknown keyword, ValueError a bad value.
void read_trainer_options(const pybind11::kwargs& kwargs, TrainerOptions& options);
// The defaults (moe_trainer_options_init) as a dict of the same keywords.
pybind11::dict default_trainer_options();
// The module constants SCHEDULE_*, GATING_*, NAN_*, TASK_*.
void bind_trainer_constants(pybind11::module_& m);

}  // namespace moesdk
