// A tokenizer.json pattern ({"Regex": ...} in Oniguruma syntax, or {"String": ...} matched
// literally), compiled once with PCRE2 (UTF + UCP, JIT) and safe to use from many threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace moe::text {

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern (see onig_pattern.h); `where` names the file and key for
  // errors. allow_invalid_utf: subjects may hold ill-formed UTF-8 (decoders see raw bytes).
  static Regex onig(const std::string& pattern, const std::string& where, bool allow_invalid_utf = false);
  // Matches `text` literally (must not be empty).
  static Regex literal(const std::string& text, const std::string& where);

  // The first match starting at or after `from`; false when there is none.
  bool find(std::string_view subject, size_t from, size_t& begin, size_t& end) const;

  // Calls on_match(begin, end) for successive matches the way Oniguruma's find iterator does
  // (Hugging Face's find_matches): an empty match where the previous match ended is skipped.
  template <typename OnMatch>
  void for_each_match(std::string_view subject, OnMatch&& on_match) const {
    size_t from = 0, last_match_end = std::string_view::npos, begin = 0, end = 0;
    while (from <= subject.size() && find(subject, from, begin, end)) {
      if (begin == end && end == last_match_end) {
        from += from < subject.size() ? char_length_at(subject, from) : 1;
        continue;
      }
      from = last_match_end = end;
      on_match(begin, end);
    }
  }

 private:
  struct Compiled;
  explicit Regex(std::shared_ptr<const Compiled> compiled) : compiled_(std::move(compiled)) {}
  static size_t char_length_at(std::string_view s, size_t pos);

  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace moe::text
