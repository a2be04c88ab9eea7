// tokenizer.json regexes (Oniguruma syntax) compiled with PCRE2 must match what Hugging Face's
// Oniguruma matches: the rewritten escapes, find-iterator semantics, and the DeepSeek-V3 patterns.
#include <gtest/gtest.h>

#include "text_error.h"
#include "compiled_regex.h"

namespace moe::text {
namespace {

std::vector<std::string> matches(const std::string& pattern, const std::string& text) {
  std::vector<std::string> out;
  Regex::onig(pattern, "test").for_each_match(text, [&](size_t b, size_t e) { out.push_back(text.substr(b, e - b)); });
  return out;
}

using Strings = std::vector<std::string>;

TEST(OnigRegex, WhitespaceIsTheWhiteSpaceProperty) {
  // Oniguruma's \s: U+0085 and U+3000 are spaces; U+180E (no longer a space since Unicode 6.3),
  // U+200B and U+FEFF are not (PCRE2's own \s would take U+180E).
  EXPECT_EQ(matches("\\s+", "a\u0085b\u3000c\u180Ed\u200Be\uFEFFf\u2028g"), (Strings{"\u0085", "\u3000", "\u2028"}));
  EXPECT_EQ(matches("\\S+", "ab\u180Ecd e"), (Strings{"ab\u180Ecd", "e"}));
  EXPECT_EQ(matches("[\\s,]+", "a, \u00a0b"), (Strings{", \u00a0"}));
}

TEST(OnigRegex, WordCharactersFollowOniguruma) {
  // Marks and connector punctuation are word characters; so are Latin-1's ² ³ ¹ ¼ ½ ¾.
  EXPECT_EQ(matches("\\w+", "e\u0301t\u00e9_x-y ²½ ٣"), (Strings{"e\u0301t\u00e9_x", "y", "²½", "٣"}));
  EXPECT_EQ(matches("\\W+", "ab, cd"), (Strings{", "}));
  EXPECT_EQ(matches("\\bcat\\b", "cat concat cat_ cat."), (Strings{"cat", "cat"}));
}

TEST(OnigRegex, OnigurumaOnlyEscapesAreTranslated) {
  EXPECT_EQ(matches("\\h+", "xyz 0fA9 g"), (Strings{"0fA9"}));  // \h: hexadecimal digit
  EXPECT_EQ(matches("\\u4e2d", "中文"), (Strings{"中"}));
  EXPECT_EQ(matches("\\p{Letter}+", "abc 123 déf"), (Strings{"abc", "déf"}));
  EXPECT_EQ(matches("\\p{Han}+", "abc中文def"), (Strings{"中文"}));
  EXPECT_EQ(matches("\\d+", "12 ٣٤ ７"), (Strings{"12", "٣٤", "７"}));  // \d: any decimal digit
}

TEST(OnigRegex, EmptyMatchesFollowTheFindIterator) {
  // An empty match right where the previous match ended is skipped; elsewhere it is a match.
  std::vector<std::pair<size_t, size_t>> spans;
  Regex::onig("x*", "test").for_each_match("axxb", [&](size_t b, size_t e) { spans.emplace_back(b, e); });
  EXPECT_EQ(spans, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
}

TEST(OnigRegex, LineAnchorsSeeOnlyLineFeeds) {
  EXPECT_EQ(matches("^\\w+", "one\ntwo\rthree"), (Strings{"one", "two"}));
  EXPECT_EQ(matches("\\w+$", "one\ntwo"), (Strings{"one", "two"}));
}

// The pre-tokenizer of DeepSeek-V3's tokenizer.json, applied in order as in its Sequence.
TEST(OnigRegex, DeepSeekPatternsSplitLikeOniguruma) {
  EXPECT_EQ(matches("\\p{N}{1,3}", "1234567 ٣٤٥٦ ½"), (Strings{"123", "456", "7", "٣٤٥", "٦", "½"}));
  EXPECT_EQ(matches("[一-龥぀-ゟ゠-ヿ]+", "abc日本語のテキストdef中"), (Strings{"日本語のテキスト", "中"}));
  const std::string big =
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
  EXPECT_EQ(matches(big, "Hello, world! It's  fine.\n\n  x"),
            (Strings{"Hello", ",", " world", "!", " It", "'s", " ", " fine", ".\n\n", " ", " x"}));
  // \s+(?!\S) leaves the last space of a run to the word after it; U+0085 is a space there too.
  EXPECT_EQ(matches(big, "a\u0085\u0085b"), (Strings{"a", "\u0085", "\u0085b"}));
}

TEST(OnigRegex, WhatPcre2CannotExpressIsAnErrorNamingIt) {
  try {
    Regex::onig("[a-z&&[^aeiou]]", "tokenizer.json: pre_tokenizer.pattern.Regex");
    FAIL() << "accepted a class intersection";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: pre_tokenizer.pattern.Regex"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[a-z&&[^aeiou]]"), std::string::npos);
  }
  try {
    Regex::onig("(unclosed", "where");
    FAIL() << "accepted a broken pattern";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("(unclosed"), std::string::npos);
  }
}

TEST(OnigRegex, RunawayBacktrackingIsAnErrorNotAHang) {
  Regex r = Regex::onig("(a|aa)+$", "where");
  std::string text(5000, 'a');
  text += "!";
  size_t b = 0, e = 0;
  try {
    r.find(text, 0, b, e);
    FAIL() << "an exponential search finished";
  } catch (const Error& err) {
    EXPECT_EQ(err.status(), MOE_ERR_LIMIT);
    EXPECT_NE(std::string(err.what()).find("(a|aa)+$"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace moe::text
