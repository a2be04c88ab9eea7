// Parsing tokenizer.json. model.vocab and model.merges (hundreds of thousands of entries for real
// tokenizers) are read straight into flat lists while the file is parsed, instead of into a JSON
// tree; everything else becomes an nlohmann::json document. This keeps loading a 128k-token
// tokenizer fast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::text {

struct TokenizerJson {
  nlohmann::json document;  // without model.vocab / model.merges when they were captured below
  bool vocab_captured = false;
  std::vector<std::pair<std::string, int64_t>> vocab;  // model.vocab, in file order
  bool merges_captured = false;
  std::vector<std::pair<std::string, std::string>> merges;  // model.merges as (left, right)
};

// Parses tokenizer.json text; errors (MOE_ERR_FORMAT) name display_name and the byte or key at fault.
TokenizerJson parse_tokenizer_json(std::string_view text, const std::string& display_name);

// A whole file's bytes (MOE_ERR_IO naming display_name when it cannot be read).
std::string read_file(const std::string& path, const std::string& display_name);

}  // namespace moe::text
