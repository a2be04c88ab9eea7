// tokenizer.json's "added_tokens": special and added tokens recognised inside text before anything
// else runs. Tokens with "normalized": false are found in the raw input; the others in the normalised
// text (their content normalised the same way). Matching is leftmost-longest; single_word, lstrip and
// rstrip behave as in Hugging Face tokenizers (stripped whitespace belongs to the token).
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json_access.h"
#include "normalizer.h"
#include "compiled_regex.h"

namespace moe::text {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A byte trie over token contents for leftmost-longest search.
class TokenTrie {
 public:
  void add(std::string_view pattern, int32_t value);
  bool empty() const { return nodes_.size() <= 1; }
  // The leftmost match starting at or after `from` (longest there): [begin, end) and its value.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& end, int32_t& value) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, uint32_t>> children;
    int32_t value = -1;
  };
  std::vector<Node> nodes_{Node{}};
  std::array<bool, 256> first_byte_{};
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(const JsonNode& list, const NormalizerChain& normalizer);

  // Splits text into stretches: on_text(begin, end) for text without added tokens, on_token(id,
  // begin, end) for an added token (its range includes whitespace it strips). normalized_pass
  // chooses which tokens are searched (see the header comment).
  template <typename OnText, typename OnToken>
  void split(std::string_view text, bool normalized_pass, OnText&& on_text, OnToken&& on_token) const {
    const TokenTrie& trie = normalized_pass ? normalized_trie_ : raw_trie_;
    size_t done = 0, from = 0, begin = 0, end = 0;
    int32_t index = -1;
    while (!trie.empty() && from < text.size() && trie.find(text, from, begin, end, index)) {
      from = end;
      const AddedToken& t = tokens_[index];
      if (t.single_word && !(no_word_before(text, begin) && no_word_after(text, end))) continue;
      if (begin < done) continue;
      if (t.lstrip) begin = std::max(done, strip_left(text, begin));
      if (t.rstrip) end = strip_right(text, end);
      if (begin > done) on_text(done, begin);
      on_token(t.id, begin, end);
      done = end;
      from = std::max(from, end);
    }
    if (done < text.size()) on_text(done, text.size());
  }

  const AddedToken* by_id(int32_t id) const;
  int32_t token_to_id(std::string_view content) const;
  int32_t max_id() const { return max_id_; }
  bool has_normalized_tokens() const { return !normalized_trie_.empty(); }

 private:
  // single_word: no word character (Unicode \w) right before / right after a match.
  bool is_word_char(std::string_view text, size_t char_begin) const;
  bool no_word_before(std::string_view text, size_t at) const;
  bool no_word_after(std::string_view text, size_t at) const;
  static size_t strip_left(std::string_view text, size_t at);
  static size_t strip_right(std::string_view text, size_t at);

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> index_by_id_;
  std::unordered_map<std::string, int32_t> id_by_content_;
  TokenTrie raw_trie_;
  TokenTrie normalized_trie_;
  std::optional<Regex> word_char_;
  int32_t max_id_ = -1;
};

// Unicode White_Space.
bool is_white_space(uint32_t cp);

}  // namespace moe::text
