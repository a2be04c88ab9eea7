// Reading tokenizer.json / tokenizer_config.json: every accessor knows the file and the path of
// the value it reads ("tokenizer.json: model.merges[12]"), so every error names both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "text_error.h"

namespace moe::text {

class JsonNode {
 public:
  JsonNode(const nlohmann::json& value, std::string file, std::string path)
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  // "<file>: <path>" (or just the file for the root), for messages.
  std::string where() const { return path_.empty() ? file_ : file_ + ": " + path_; }
  [[noreturn]] void error(moe_status status, const std::string& what) const { fail(status, where() + ": " + what); }

  bool is_object() const { return value_->is_object(); }

  // A member that must exist (and not be null).
  JsonNode at(const std::string& key) const;
  // A member that may be absent or null.
  std::optional<JsonNode> find(const std::string& key) const;
  // An array element (bounds are the caller's loop).
  JsonNode at(size_t index) const;
  size_t array_size() const;
  size_t object_size() const;

  std::string string() const;
  bool boolean() const;
  int64_t integer(int64_t min, int64_t max) const;
  double number() const;

  // Optional typed members with a default.
  bool boolean_or(const std::string& key, bool fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  // The "type" member of a component object ("BPE", "Split", ...).
  std::string type() const { return at("type").string(); }

 private:
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const char* kind() const;

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

// Parses JSON text; bad JSON is MOE_ERR_FORMAT naming display_name and the byte offset.
nlohmann::json parse_json(std::string_view text, const std::string& display_name);

}  // namespace moe::text
