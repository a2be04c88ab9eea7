// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}), with the exact merge order of
// Hugging Face tokenizers: repeatedly merge the adjacent pair of lowest rank, leftmost first.
// Options: merges as "a b" strings or [a, b] pairs, byte_fallback (<0xHH> tokens for characters
// outside the vocabulary), unk_token + fuse_unk, ignore_merges, continuing_subword_prefix,
// end_of_word_suffix. dropout > 0 (random merges) is refused.
//
// With a ByteLevel pre-tokenizer the model works on raw bytes: the vocabulary is converted from
// its byte-level spelling once at load time, so encoding never builds byte-level strings.
#pragma once

#include <array>
#include <functional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hash_tables.h"
#include "json_access.h"
#include "tokenizer_json.h"

namespace moe::text {

// One token of a word: its id and the bytes [begin, end) of the word it covers.
struct WordToken {
  int32_t id;
  uint32_t begin;
  uint32_t end;
};

// Per-call working memory (one per encode call, so the model itself stays read-only).
struct BpeScratch {
  struct Symbol {
    int32_t id;
    uint32_t begin, end;
    int32_t prev, next;  // linked list for the heap merge; -1 at the ends
    bool plain;          // a vocabulary symbol of one unit (not unk / byte fallback)
  };
  std::vector<Symbol> symbols;
  std::vector<uint32_t> ranks;  // pair ranks for the small-word merge
  std::vector<uint64_t> heap;
  // Called with the tokens found so far when a very long word has produced many (they are then
  // cleared), so its tokens never pile up; unset: they all stay in `out`.
  std::function<void(std::vector<WordToken>&)> drain;
};

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object; its vocab and merges come from `lists` when they
  // were captured there while parsing (tokenizer_json.h).
  BpeModel(const JsonNode& model, const TokenizerJson& lists, bool byte_level);

  // Appends the tokens of one pre-tokenized word (valid UTF-8, non-empty).
  void encode_word(std::string_view word, std::vector<WordToken>& out, BpeScratch& scratch) const;

  // The id of a token as spelled in tokenizer.json, or -1.
  int32_t token_to_id(std::string_view token) const { return by_text_.get(token); }
  // The token text of an id, or nullptr.
  const std::string* id_to_token(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < tokens_.size() && has_token_[id] ? &tokens_[id] : nullptr;
  }
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }

 private:
  void add_token(const std::string& text, int64_t id, std::string& raw);
  void add_merge(size_t index, const std::string& left, const std::string& right, size_t prefix_length,
                 std::string& merged, std::string& symbol);
  // The id of one unit (byte or character) in its word position, or -1.
  int32_t unit_id(std::string_view unit, bool first, bool last) const;
  // The merge of two adjacent initial symbols (a byte-level word's first lookups use a flat table).
  const Merge* initial_merge(std::string_view word, const BpeScratch::Symbol& a, const BpeScratch::Symbol& b) const;
  void merge_small(std::string_view word, BpeScratch::Symbol* symbols, size_t count, std::vector<WordToken>& out,
                   BpeScratch& scratch) const;
  void merge_heap(std::string_view word, BpeScratch::Symbol* symbols, size_t count, std::vector<WordToken>& out,
                  BpeScratch& scratch) const;
  void merge_range(std::string_view word, BpeScratch::Symbol* symbols, size_t count, std::vector<WordToken>& out,
                   BpeScratch& scratch) const;
  bool joinable(uint8_t left, uint8_t right) const { return (joinable_[left * 4 + (right >> 6)] >> (right & 63)) & 1; }

  void encode_uncached(std::string_view word, std::vector<WordToken>& out, BpeScratch& scratch) const;

  uint64_t id_;             // identifies this model's per-thread word caches (never reused)
  std::string where_;       // "<file>: model", for messages
  bool byte_level_ = false;
  StringIdMap by_text_;     // tokens as spelled in tokenizer.json
  StringIdMap by_symbol_;   // what encoding looks up: raw bytes (byte-level) or the text
  std::vector<std::string> tokens_;
  std::vector<bool> has_token_;
  PairMergeMap merges_;
  std::array<int32_t, 256> byte_ids_{};      // byte-level: the symbol of each byte
  std::vector<Merge> byte_pair_merges_;      // byte-level: the merge of each pair of byte symbols
  std::array<int32_t, 256> fallback_ids_{};  // <0xHH> tokens (-1 when absent)
  std::vector<int32_t> bmp_ids_;             // character mode: single-character symbols below U+10000
  std::array<uint64_t, 1024> joinable_{};    // byte pairs that occur inside some merged token
  std::string unk_token_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;  // continuing_subword_prefix, in symbol space
  std::string suffix_;  // end_of_word_suffix, in symbol space
};

}  // namespace moe::text
