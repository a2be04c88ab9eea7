// The test corpus the text plugin is held to against its peer: at least 2,000 lines of English prose
// (the fortunes package), Chinese, Japanese, Arabic and other scripts (corpus/multilingual.txt),
// emoji, source code, long digit runs, whitespace runs, special tokens inside text, and random
// Unicode strings drawn from a fixed seed. Deterministic for a given seed and set of inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moe::test {

struct CorpusLine {
  std::string category;  // "prose", "multilingual", "emoji", "code", "digits", "whitespace", "special", "random"
  std::string text;
};

struct CorpusInputs {
  std::string fortunes_dir;                 // /usr/share/games/fortunes
  std::string multilingual_file;            // tests/text/corpus/multilingual.txt
  std::vector<std::string> code_files;      // source files to take code lines from
  std::vector<std::string> special_tokens;  // the tokenizer's added tokens, to put inside text
  uint64_t seed = 20240607;
};

// Throws std::runtime_error naming a missing input.
std::vector<CorpusLine> build_corpus(const CorpusInputs& inputs);

// Random code points from blocks whose characters were all assigned (and whose properties have been
// stable) since Unicode 13 or earlier, so that PCRE2 (Unicode 14), ICU in Node and the Unicode 15
// tables here agree on every one of them.
std::string random_unicode_string(uint64_t& state, size_t max_code_points);

}  // namespace moe::test
