// Typed reading of a JSON configuration (config.json, an index file): every accessor checks the
// value's type and range, and every error is MOE_ERR_FORMAT naming the file and the full key
// ("/models/x/config.json: key 'rope_parameters.factor' must be a number, got string \"4\"").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/json_file.h"

namespace moe::io {

class ConfigReader {
 public:
  // The JSON file at `path` (read_json_file's errors); its top level must be an object.
  static ConfigReader from_file(const std::string& path);
  // A document already parsed; `source` names it in errors. Its top level must be an object.
  ConfigReader(Json document, std::string source);

  // The file (or other source) the document came from.
  const std::string& source() const { return source_; }
  // The raw object, for what the accessors below do not cover.
  const Json& json() const { return *object_; }

  // True when the key is present, even with the value null.
  bool has(const std::string& key) const;
  // True when the key is missing or null: what `config.get(key) is None` means in Python, and how
  // Hugging Face configs switch features off (q_lora_rank, rope_scaling, sliding_window).
  bool is_null(const std::string& key) const;
  // The keys of this object, sorted.
  std::vector<std::string> keys() const;

  // Integers. A JSON float is accepted only when it is integral (4096.0); the value must fit int64.
  int64_t get_int(const std::string& key) const;
  // `fallback` when the key is missing or null; otherwise as get_int.
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  // Sizes and counts: the value must be >= 1.
  int64_t get_positive_int(const std::string& key) const;
  int64_t get_positive_int_or(const std::string& key, int64_t fallback) const;
  // Counts that may be zero (first_k_dense_replace, n_shared_experts): the value must be >= 0.
  int64_t get_non_negative_int(const std::string& key) const;
  int64_t get_non_negative_int_or(const std::string& key, int64_t fallback) const;

  // Numbers: JSON integers are accepted.
  double get_float(const std::string& key) const;
  double get_float_or(const std::string& key, double fallback) const;

  // Booleans: only true and false (not 0 or 1).
  bool get_bool(const std::string& key) const;
  bool get_bool_or(const std::string& key, bool fallback) const;

  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;

  // A list of integers. A single integer is read as a list of one, because Hugging Face configs
  // write eos_token_id either way.
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;

  // A nested object (rope_parameters, quantization_config); errors from the returned reader name
  // the full key path ("rope_parameters.factor").
  ConfigReader object(const std::string& key) const;

 private:
  ConfigReader(std::shared_ptr<const Json> root, const Json* object, std::string source, std::string prefix);

  // nullptr when the key is missing.
  const Json* find(const std::string& key) const;
  const Json& require(const std::string& key) const;
  int64_t to_int(const std::string& key, const Json& value) const;
  int64_t to_int_at_least(const std::string& key, const Json& value, int64_t min) const;
  double to_float(const std::string& key, const Json& value) const;
  bool to_bool(const std::string& key, const Json& value) const;
  std::string to_string(const std::string& key, const Json& value) const;
  [[noreturn]] void fail_type(const std::string& key, const char* expected, const Json& value) const;

  std::shared_ptr<const Json> root_;  // keeps object_ alive in nested readers
  const Json* object_;
  std::string source_;
  std::string prefix_;  // "" at the top level, "rope_parameters." in object("rope_parameters")
};

}  // namespace moe::io
