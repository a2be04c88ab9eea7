// tokenizer.json's "normalizer": NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence. Normalisers run
// on each stretch of input between added tokens, before pre-tokenization.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "json_access.h"
#include "source_text.h"

namespace moe::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Writes the normalised text to out (empty on entry); returns false, leaving out alone, when
  // the text is already normal.
  virtual bool apply(const SourceText& in, OwnedText& out) const = 0;
};

// Two buffers the chain alternates between (one per encode call).
struct NormalizeScratch {
  std::array<OwnedText, 2> buffers;
};

class NormalizerChain {
 public:
  NormalizerChain() = default;
  explicit NormalizerChain(const JsonNode& node) { add(node, 0); }

  bool empty() const { return steps_.empty(); }
  // The normalised text: `in` itself when nothing changed, else a view of one of scratch's buffers.
  SourceText run(const SourceText& in, NormalizeScratch& scratch, bool track) const;
  // Normalises a plain string (an added token's content).
  std::string normalize(const std::string& text) const;

 private:
  void add(const JsonNode& node, int depth);
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace moe::text
