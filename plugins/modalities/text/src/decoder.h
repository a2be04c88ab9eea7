// tokenizer.json's "decoder": turns token strings back into text. Decoders here produce raw bytes
// (ByteLevel and ByteFallback may yield ill-formed UTF-8 mid-stream); the tokenizer replaces what
// is still ill-formed at the very end, which is what lets streaming decode hold back partial
// characters instead of emitting U+FFFD for them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "json_access.h"

namespace moe::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token list in place (Hugging Face's decode_chain).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence.
class DecoderChain {
 public:
  DecoderChain() = default;
  explicit DecoderChain(const JsonNode& node) { add(node, 0); }

  // The decoded bytes; without a decoder the tokens are joined with spaces (as Hugging Face does).
  std::string decode(std::vector<std::string> tokens) const;

 private:
  void add(const JsonNode& node, int depth);
  std::vector<std::unique_ptr<Decoder>> steps_;
  bool present_ = false;
};

}  // namespace moe::text
