// Streaming decode for generation: ids arrive one at a time and only complete UTF-8 text comes out.
// Each id's text is what decoding (previous id, id) adds to decoding (previous id) alone, so
// context-dependent decoders (Metaspace's first-token space, Strip) behave as in a full decode;
// bytes of a character split across tokens (byte fallback, byte-level) are held back until the
// character is complete. Concatenated, the pieces equal decode() of all ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tokenizer.h"
#include "utf8.h"

namespace moe::text {

class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, bool skip_special) : tokenizer_(tokenizer), skip_special_(skip_special) {}

  // The text that became complete with this id. An id the tokenizer does not have (models often
  // have more embedding rows than the tokenizer has tokens) adds no text.
  std::string push(int32_t id);
  // Whatever is still held back (an incomplete character becomes U+FFFD).
  std::string finish() { return assembler_.finish(); }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::optional<int32_t> previous_;
  Utf8Assembler assembler_;
};

}  // namespace moe::text
