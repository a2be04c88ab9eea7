// The pre-tokenizers this plugin implements (pre_tokenizer.h builds the chain from tokenizer.json).
#pragma once

#include <memory>
#include <string>

#include "json_access.h"
#include "pre_tokenizer.h"

namespace moe::text {

// {"type": "Split", "pattern": {"Regex"|"String": ...}, "behavior": ..., "invert": bool}
std::unique_ptr<PreTokenizer> make_split(const JsonNode& node);
// {"type": "Digits", "individual_digits": bool}: ASCII digits apart from the rest.
std::unique_ptr<PreTokenizer> make_digits(const JsonNode& node);
// {"type": "ByteLevel", "add_prefix_space": bool, "use_regex": bool}
std::unique_ptr<PreTokenizer> make_byte_level(const JsonNode& node);
// {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"|"first"|"never", "split": bool}
std::unique_ptr<PreTokenizer> make_metaspace(const JsonNode& node);

// Metaspace settings shared by the pre-tokenizer and the decoder. The legacy spelling
// "add_prefix_space": true/false means prepend_scheme "always"/"never".
enum class PrependScheme { Always, First, Never };
struct MetaspaceOptions {
  std::string replacement = "\xE2\x96\x81";  // U+2581
  PrependScheme prepend = PrependScheme::Always;
  bool split = true;
};
MetaspaceOptions parse_metaspace_options(const JsonNode& node);

}  // namespace moe::text
