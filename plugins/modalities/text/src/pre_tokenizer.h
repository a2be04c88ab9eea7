// Pre-tokenizers cut (and some rewrite) text into the words the model encodes one at a time.
// Pieces flow depth-first through the chain, so no list of all words of a long input is ever built.
#pragma once

#include <memory>
#include <vector>

#include "json_access.h"
#include "source_text.h"

namespace moe::text {

class PieceSink {
 public:
  virtual void take(const Piece& piece) = 0;

 protected:
  ~PieceSink() = default;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Passes the parts of `piece` to out, in order; empty parts are never passed. track: keep the
  // input origin of rewritten bytes (offsets were asked for).
  virtual void split(const Piece& piece, PieceSink& out, bool track) const = 0;
};

// tokenizer.json's "pre_tokenizer", with Sequences flattened: Split, ByteLevel, Metaspace, Digits,
// Sequence. byte_level is set when a ByteLevel pre-tokenizer is present (it must come last: it
// hands raw bytes to the model).
class PreTokenizerChain {
 public:
  PreTokenizerChain() = default;
  PreTokenizerChain(const JsonNode& node, bool& byte_level);

  void run(const Piece& piece, PieceSink& out, bool track) const { stage(0, piece, out, track); }

 private:
  class NextStage;
  void add(const JsonNode& node, bool& byte_level, int depth);
  void stage(size_t index, const Piece& piece, PieceSink& out, bool track) const;

  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace moe::text
