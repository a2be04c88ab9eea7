#include "json_access.h"

#include <cmath>

namespace moe::text {

const char* JsonNode::kind() const {
  switch (value_->type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::binary: return "binary data";
    case nlohmann::json::value_t::discarded: return "nothing";
    default: return "a number";
  }
}

JsonNode JsonNode::at(const std::string& key) const {
  auto found = find(key);
  if (!found) fail(MOE_ERR_FORMAT, where() + ": the key \"" + key + "\" is missing");
  return *found;
}

std::optional<JsonNode> JsonNode::find(const std::string& key) const {
  if (!value_->is_object()) error(MOE_ERR_FORMAT, std::string("expected an object, found ") + kind());
  auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, file_, child_path(key));
}

JsonNode JsonNode::at(size_t index) const {
  return JsonNode((*value_)[index], file_, path_ + "[" + std::to_string(index) + "]");
}

size_t JsonNode::array_size() const {
  if (!value_->is_array()) error(MOE_ERR_FORMAT, std::string("expected an array, found ") + kind());
  return value_->size();
}

size_t JsonNode::object_size() const {
  if (!value_->is_object()) error(MOE_ERR_FORMAT, std::string("expected an object, found ") + kind());
  return value_->size();
}

std::string JsonNode::string() const {
  if (!value_->is_string()) error(MOE_ERR_FORMAT, std::string("expected a string, found ") + kind());
  return value_->get<std::string>();
}

bool JsonNode::boolean() const {
  if (!value_->is_boolean()) error(MOE_ERR_FORMAT, std::string("expected true or false, found ") + kind());
  return value_->get<bool>();
}

int64_t JsonNode::integer(int64_t min, int64_t max) const {
  int64_t v = 0;
  if (value_->is_number_unsigned()) {
    auto u = value_->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) error(MOE_ERR_FORMAT, std::to_string(u) + " is larger than " + std::to_string(max));
    v = static_cast<int64_t>(u);
  } else if (value_->is_number_integer()) {
    v = value_->get<int64_t>();
  } else {
    error(MOE_ERR_FORMAT, std::string("expected an integer, found ") + kind());
  }
  if (v < min || v > max)
    error(MOE_ERR_FORMAT, std::to_string(v) + " is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return v;
}

double JsonNode::number() const {
  if (!value_->is_number()) error(MOE_ERR_FORMAT, std::string("expected a number, found ") + kind());
  double v = value_->get<double>();
  if (!std::isfinite(v)) error(MOE_ERR_FORMAT, "expected a finite number");
  return v;
}

bool JsonNode::boolean_or(const std::string& key, bool fallback) const {
  auto found = find(key);
  return found ? found->boolean() : fallback;
}

std::string JsonNode::string_or(const std::string& key, const std::string& fallback) const {
  auto found = find(key);
  return found ? found->string() : fallback;
}

nlohmann::json parse_json(std::string_view text, const std::string& display_name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(MOE_ERR_FORMAT, display_name + ": not valid JSON at byte " + std::to_string(e.byte) + " (" + e.what() + ")");
  }
}

}  // namespace moe::text
