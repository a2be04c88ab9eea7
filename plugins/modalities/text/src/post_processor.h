// tokenizer.json's "post_processor" for single sequences: TemplateProcessing (the special tokens
// before and after $A), ByteLevel (trim_offsets), or a Sequence of them. tokenizer_config.json's
// add_bos_token / add_eos_token, when present, replace it the way transformers does
// (LlamaTokenizerFast.update_post_processor): bos? $A eos?.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "json_access.h"

namespace moe::text {

struct PostProcessor {
  std::vector<int32_t> before;  // ids added in front of the sequence
  std::vector<int32_t> after;   // ids added after it
  bool trim_offsets = false;    // ByteLevel: offsets leave out leading/trailing spaces
  bool trim_add_prefix_space = false;

  PostProcessor() = default;
  // `node` is tokenizer.json's post_processor.
  PostProcessor(const JsonNode& node);

 private:
  void add(const JsonNode& node, bool& has_template, int depth);
};

}  // namespace moe::text
