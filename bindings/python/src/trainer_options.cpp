#include "trainer_options.h"

#include <pybind11/stl.h>

#include <map>
#include <type_traits>

#include "moesdk_trainer_fields.h"

namespace py = pybind11;

namespace moesdk {
namespace {

// The int32 fields that take one of moe.h's #defined values may also be given by name.
const std::map<std::string, std::map<std::string, int32_t>>& named_values() {
  static const std::map<std::string, std::map<std::string, int32_t>> names = {
      {"schedule", {{"constant", MOE_SCHEDULE_CONSTANT}, {"cosine", MOE_SCHEDULE_COSINE}}},
      {"gating", {{"topk", MOE_GATING_TOPK}, {"gumbel", MOE_GATING_GUMBEL}}},
      {"nan_policy", {{"skip_step", MOE_NAN_SKIP_STEP}, {"stop", MOE_NAN_STOP}}},
      {"task",
       {{"causal_lm", MOE_TASK_CAUSAL_LM},
        {"sequence_classification", MOE_TASK_SEQUENCE_CLASSIFICATION},
        {"span_extraction", MOE_TASK_SPAN_EXTRACTION}}},
  };
  return names;
}

template <typename Field>
Field to_field(const char* name, py::handle value) {
  if (py::isinstance<py::str>(value)) {
    auto field = named_values().find(name);
    if (field == named_values().end())
      throw py::type_error(std::string("trainer option ") + name + " takes a number, not a string");
    auto text = value.cast<std::string>();
    auto found = field->second.find(text);
    if (found == field->second.end()) {
      std::string known;
      for (const auto& [n, v] : field->second) known += (known.empty() ? "" : ", ") + n;
      throw py::value_error(std::string("trainer option ") + name + "=\"" + text + "\" is not one of: " + known);
    }
    return static_cast<Field>(found->second);
  }
  try {
    if constexpr (std::is_floating_point_v<Field>) {
      return value.cast<Field>();
    } else {
      // Python ints are unbounded: refuse what does not fit rather than wrap around.
      if (py::isinstance<py::float_>(value))
        throw py::type_error(std::string("trainer option ") + name + " takes an integer");
      return value.cast<Field>();
    }
  } catch (const py::cast_error&) {
    throw py::type_error(std::string("trainer option ") + name + " cannot be " +
                         std::string(py::str(value.get_type().attr("__name__"))) + " " + std::string(py::repr(value)));
  }
}

}  // namespace

void read_trainer_options(const py::kwargs& kwargs, TrainerOptions& options) {
  moe_trainer_options& o = options.c;
  moe_trainer_options_init(&o);
  for (auto [key, value] : kwargs) {
    const std::string name = key.cast<std::string>();
    bool known = false;
#define MOESDK_READ(type, field, camel)                                                          \
    if (name == #field) {                                                                        \
      o.field = to_field<std::remove_reference_t<decltype(o.field)>>(#field, value);            \
      known = true;                                                                              \
    }
    MOESDK_TRAINER_OPTION_FIELDS(MOESDK_READ)
#undef MOESDK_READ
    if (name == "freeze_experts") {
      options.freeze_experts = value.cast<std::vector<int32_t>>();
      known = true;
    } else if (name == "freeze_patterns") {
      if (py::isinstance<py::str>(value)) throw py::type_error("freeze_patterns must be a list of regexes, not one string");
      options.freeze_pattern_strings = value.cast<std::vector<std::string>>();
      known = true;
    }
    if (!known) {
      std::string all;
      for (auto [k, v] : default_trainer_options()) all += (all.empty() ? "" : ", ") + k.cast<std::string>();
      throw py::type_error("unknown trainer option '" + name + "' (the options: " + all + ")");
    }
  }
  for (const auto& p : options.freeze_pattern_strings) options.freeze_patterns.push_back(p.c_str());
  o.freeze_experts = options.freeze_experts.empty() ? nullptr : options.freeze_experts.data();
  o.num_freeze_experts = static_cast<int32_t>(options.freeze_experts.size());
  o.freeze_patterns = options.freeze_patterns.empty() ? nullptr : options.freeze_patterns.data();
  o.num_freeze_patterns = static_cast<int32_t>(options.freeze_patterns.size());
}

py::dict default_trainer_options() {
  moe_trainer_options o;
  moe_trainer_options_init(&o);
  py::dict d;
#define MOESDK_WRITE(type, field, camel) d[#field] = static_cast<type>(o.field);  // on/off fields as bool
  MOESDK_TRAINER_OPTION_FIELDS(MOESDK_WRITE)
#undef MOESDK_WRITE
  d["freeze_experts"] = py::list();
  d["freeze_patterns"] = py::list();
  return d;
}

void bind_trainer_constants(py::module_& m) {
  m.attr("SCHEDULE_CONSTANT") = MOE_SCHEDULE_CONSTANT;
  m.attr("SCHEDULE_COSINE") = MOE_SCHEDULE_COSINE;
  m.attr("GATING_TOPK") = MOE_GATING_TOPK;
  m.attr("GATING_GUMBEL") = MOE_GATING_GUMBEL;
  m.attr("NAN_SKIP_STEP") = MOE_NAN_SKIP_STEP;
  m.attr("NAN_STOP") = MOE_NAN_STOP;
  m.attr("TASK_CAUSAL_LM") = MOE_TASK_CAUSAL_LM;
  m.attr("TASK_SEQUENCE_CLASSIFICATION") = MOE_TASK_SEQUENCE_CLASSIFICATION;
  m.attr("TASK_SPAN_EXTRACTION") = MOE_TASK_SPAN_EXTRACTION;
}

}  // namespace moesdk
