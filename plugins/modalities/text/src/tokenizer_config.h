// What this plugin reads from tokenizer_config.json (the transformers side of a tokenizer):
// add_bos_token / add_eos_token and the special tokens they refer to.
#pragma once

#include <optional>
#include <string>

namespace moe::text {

struct TokenizerConfig {
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
};

// Reads path (errors name it as display_name); special tokens may be strings or
// {"content": ...} objects (transformers' AddedToken form).
TokenizerConfig read_tokenizer_config(const std::string& path, const std::string& display_name);

}  // namespace moe::text
