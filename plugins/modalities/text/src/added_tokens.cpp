#include "added_tokens.h"

#include <algorithm>

#include "utf8.h"

namespace moe::text {
namespace {

constexpr int64_t kMaxTokenId = (1 << 24) - 1;

}  // namespace

bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

void TokenTrie::add(std::string_view pattern, int32_t value) {
  uint32_t node = 0;
  for (char c : pattern) {
    auto byte = static_cast<uint8_t>(c);
    auto& children = nodes_[node].children;
    auto it = std::find_if(children.begin(), children.end(), [&](const auto& e) { return e.first == byte; });
    if (it == children.end()) {
      auto next = static_cast<uint32_t>(nodes_.size());
      nodes_[node].children.emplace_back(byte, next);
      nodes_.emplace_back();
      node = next;
    } else {
      node = it->second;
    }
  }
  nodes_[node].value = value;
  first_byte_[static_cast<uint8_t>(pattern[0])] = true;
}

bool TokenTrie::find(std::string_view text, size_t from, size_t& begin, size_t& end, int32_t& value) const {
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) continue;
    uint32_t node = 0;
    int32_t best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto byte = static_cast<uint8_t>(text[j]);
      const auto& children = nodes_[node].children;
      auto it = std::find_if(children.begin(), children.end(), [&](const auto& e) { return e.first == byte; });
      if (it == children.end()) break;
      node = it->second;
      if (nodes_[node].value >= 0) {
        best = nodes_[node].value;
        best_end = j + 1;
      }
    }
    if (best >= 0) {
      begin = i;
      end = best_end;
      value = best;
      return true;
    }
  }
  return false;
}

AddedVocabulary::AddedVocabulary(const JsonNode& list, const NormalizerChain& normalizer) {
  for (size_t i = 0; i < list.array_size(); ++i) {
    JsonNode e = list.at(i);
    AddedToken t;
    t.id = static_cast<int32_t>(e.at("id").integer(0, kMaxTokenId));
    t.content = e.at("content").string();
    t.special = e.boolean_or("special", false);
    t.single_word = e.boolean_or("single_word", false);
    t.lstrip = e.boolean_or("lstrip", false);
    t.rstrip = e.boolean_or("rstrip", false);
    t.normalized = e.boolean_or("normalized", !t.special);
    if (t.content.empty()) continue;  // Hugging Face ignores empty tokens
    max_id_ = std::max(max_id_, t.id);
    id_by_content_[t.content] = t.id;
    index_by_id_[t.id] = tokens_.size();
    tokens_.push_back(std::move(t));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (!t.normalized) {
      raw_trie_.add(t.content, static_cast<int32_t>(i));
    } else {
      std::string pattern = normalizer.empty() ? t.content : normalizer.normalize(t.content);
      if (!pattern.empty()) normalized_trie_.add(pattern, static_cast<int32_t>(i));
    }
    if (t.single_word && !word_char_)
      word_char_ = Regex::onig("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", list.where());
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = id_by_content_.find(std::string(content));
  return it == id_by_content_.end() ? -1 : it->second;
}

bool AddedVocabulary::is_word_char(std::string_view text, size_t char_begin) const {
  size_t char_end = char_begin + utf8_sequence_length(static_cast<unsigned char>(text[char_begin]));
  size_t b = 0, e = 0;
  return word_char_->find(text.substr(char_begin, char_end - char_begin), 0, b, e);
}

bool AddedVocabulary::no_word_before(std::string_view text, size_t at) const {
  if (at == 0) return true;
  size_t start = at - 1;
  while (start > 0 && is_utf8_continuation(static_cast<unsigned char>(text[start]))) --start;
  return !is_word_char(text, start);
}

bool AddedVocabulary::no_word_after(std::string_view text, size_t at) const {
  return at == text.size() || !is_word_char(text, at);
}

size_t AddedVocabulary::strip_left(std::string_view text, size_t at) {
  while (at > 0) {
    size_t start = at - 1;
    while (start > 0 && is_utf8_continuation(static_cast<unsigned char>(text[start]))) --start;
    size_t pos = start;
    if (!is_white_space(next_code_point(text, pos))) break;
    at = start;
  }
  return at;
}

size_t AddedVocabulary::strip_right(std::string_view text, size_t at) {
  while (at < text.size()) {
    size_t pos = at;
    if (!is_white_space(next_code_point(text, pos))) break;
    at = pos;
  }
  return at;
}

}  // namespace moe::text
