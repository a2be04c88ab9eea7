// Parsing JSON documents (config.json, model.safetensors.index.json, safetensors headers) with
// errors that name the document and the place of the fault, and with limits that keep hostile input
// from taking unbounded memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moe::io {

using Json = nlohmann::json;

// The largest JSON file read_json_file accepts. The index files of the largest public checkpoints
// are about 10 MB; configs are a few KB.
inline constexpr size_t kMaxJsonFileBytes = size_t{128} << 20;

struct JsonLimits {
  // Objects and arrays nested deeper than this are refused: real configs nest 3 or 4 levels, and
  // every level costs memory the text did not pay for.
  int max_depth = 64;
  // Arrays longer than this are refused (safetensors headers hold only short shape arrays).
  size_t max_array_length = SIZE_MAX;
};

// Parses `text`. Malformed JSON is MOE_ERR_FORMAT naming `source` with the line, column and byte of
// the fault; exceeding `limits` is MOE_ERR_LIMIT naming `source`.
Json parse_json(std::string_view text, const std::string& source, const JsonLimits& limits = {});

// Reads and parses the file at `path`: a missing file is MOE_ERR_NOT_FOUND, an unreadable one
// MOE_ERR_IO, one over kMaxJsonFileBytes MOE_ERR_LIMIT; every message names the path.
Json read_json_file(const std::string& path, const JsonLimits& limits = {});

}  // namespace moe::io
