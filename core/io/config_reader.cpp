#include "io/config_reader.h"

#include <cmath>

#include "base/error.h"

namespace moe::io {
namespace {

// A short description of a value for error messages. Containers are named, never dumped: their
// text could be huge or (from a hostile file) nested deep enough to exhaust the stack.
std::string describe(const Json& value) {
  constexpr size_t kMaxShown = 60;
  if (value.is_object() || value.is_array()) return value.type_name();
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return std::string(value.type_name()) + " " + text;
}

}  // namespace

ConfigReader ConfigReader::from_file(const std::string& path) { return ConfigReader(read_json_file(path), path); }

ConfigReader::ConfigReader(Json document, std::string source)
    : root_(std::make_shared<const Json>(std::move(document))), object_(root_.get()), source_(std::move(source)) {
  if (!object_->is_object())
    fail(MOE_ERR_FORMAT, source_ + ": the top level must be a JSON object, got " + describe(*object_));
}

ConfigReader::ConfigReader(std::shared_ptr<const Json> root, const Json* object, std::string source,
                           std::string prefix)
    : root_(std::move(root)), object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

const Json* ConfigReader::find(const std::string& key) const {
  auto it = object_->find(key);
  return it == object_->end() ? nullptr : &*it;
}

const Json& ConfigReader::require(const std::string& key) const {
  const Json* value = find(key);
  if (!value) fail(MOE_ERR_FORMAT, source_ + ": key '" + prefix_ + key + "' is missing");
  return *value;
}

void ConfigReader::fail_type(const std::string& key, const char* expected, const Json& value) const {
  fail(MOE_ERR_FORMAT, source_ + ": key '" + prefix_ + key + "' must be " + expected + ", got " + describe(value));
}

bool ConfigReader::has(const std::string& key) const { return find(key) != nullptr; }

bool ConfigReader::is_null(const std::string& key) const {
  const Json* value = find(key);
  return !value || value->is_null();
}

std::vector<std::string> ConfigReader::keys() const {
  std::vector<std::string> out;
  out.reserve(object_->size());
  for (const auto& item : object_->items()) out.push_back(item.key());
  return out;  // nlohmann's object is a std::map: already sorted
}

int64_t ConfigReader::to_int(const std::string& key, const Json& value) const {
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_unsigned()) {
    uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) fail_type(key, "an integer that fits in 64 bits", value);
    return static_cast<int64_t>(u);
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    // Integral and inside [-2^63, 2^63): the cast is exact.
    if (std::trunc(d) == d && d >= -0x1p63 && d < 0x1p63) return static_cast<int64_t>(d);
    fail_type(key, "an integer", value);
  }
  fail_type(key, "an integer", value);
}

int64_t ConfigReader::to_int_at_least(const std::string& key, const Json& value, int64_t min) const {
  int64_t v = to_int(key, value);
  if (v < min)
    fail(MOE_ERR_FORMAT, source_ + ": key '" + prefix_ + key + "' must be " + (min == 1 ? "positive" : "non-negative") +
                             ", got " + std::to_string(v));
  return v;
}

double ConfigReader::to_float(const std::string& key, const Json& value) const {
  if (!value.is_number()) fail_type(key, "a number", value);
  return value.get<double>();
}

bool ConfigReader::to_bool(const std::string& key, const Json& value) const {
  if (!value.is_boolean()) fail_type(key, "true or false", value);
  return value.get<bool>();
}

std::string ConfigReader::to_string(const std::string& key, const Json& value) const {
  if (!value.is_string()) fail_type(key, "a string", value);
  return value.get<std::string>();
}

int64_t ConfigReader::get_int(const std::string& key) const { return to_int(key, require(key)); }

int64_t ConfigReader::get_int_or(const std::string& key, int64_t fallback) const {
  return is_null(key) ? fallback : to_int(key, *find(key));
}

int64_t ConfigReader::get_positive_int(const std::string& key) const { return to_int_at_least(key, require(key), 1); }

int64_t ConfigReader::get_positive_int_or(const std::string& key, int64_t fallback) const {
  return is_null(key) ? fallback : to_int_at_least(key, *find(key), 1);
}

int64_t ConfigReader::get_non_negative_int(const std::string& key) const {
  return to_int_at_least(key, require(key), 0);
}

int64_t ConfigReader::get_non_negative_int_or(const std::string& key, int64_t fallback) const {
  return is_null(key) ? fallback : to_int_at_least(key, *find(key), 0);
}

double ConfigReader::get_float(const std::string& key) const { return to_float(key, require(key)); }

double ConfigReader::get_float_or(const std::string& key, double fallback) const {
  return is_null(key) ? fallback : to_float(key, *find(key));
}

bool ConfigReader::get_bool(const std::string& key) const { return to_bool(key, require(key)); }

bool ConfigReader::get_bool_or(const std::string& key, bool fallback) const {
  return is_null(key) ? fallback : to_bool(key, *find(key));
}

std::string ConfigReader::get_string(const std::string& key) const { return to_string(key, require(key)); }

std::string ConfigReader::get_string_or(const std::string& key, const std::string& fallback) const {
  return is_null(key) ? fallback : to_string(key, *find(key));
}

std::vector<int64_t> ConfigReader::get_int_list(const std::string& key) const {
  const Json& value = require(key);
  if (!value.is_array()) return {to_int(key, value)};
  std::vector<int64_t> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) out.push_back(to_int(key + "[" + std::to_string(i) + "]", value[i]));
  return out;
}

std::vector<std::string> ConfigReader::get_string_list(const std::string& key) const {
  const Json& value = require(key);
  if (!value.is_array()) fail_type(key, "a list of strings", value);
  std::vector<std::string> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) out.push_back(to_string(key + "[" + std::to_string(i) + "]", value[i]));
  return out;
}

ConfigReader ConfigReader::object(const std::string& key) const {
  const Json& value = require(key);
  if (!value.is_object()) fail_type(key, "an object", value);
  return ConfigReader(root_, &value, source_, prefix_ + key + ".");
}

}  // namespace moe::io
