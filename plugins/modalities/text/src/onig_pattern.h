// tokenizer.json regexes are written for Oniguruma (what Hugging Face tokenizers compiles them with).
// PCRE2 (UTF + UCP) reads most of them the same way; this rewrites the constructs whose meaning
// differs so that matches are the same:
//   \s \S      Oniguruma: the White_Space property (PCRE2's \s would add U+180E, miss nothing else)
//   \w \W \b \B Oniguruma's Unicode word set: Alphabetic, marks, Nd, Pc, plus its Latin-1 table's
//              ² ³ ¹ ¼ ½ ¾ (PCRE2's \w is letters, numbers and '_')
//   \h \H      Oniguruma: a hexadecimal digit (PCRE2: horizontal space)
//   \uHHHH     Oniguruma's code point escape (PCRE2 spells it \x{HHHH})
//   \p{Word}, long general-category names (\p{Letter}) -> what PCRE2 knows
// A construct PCRE2 cannot express (class intersection "&&", \W inside a class) is an error that
// names it.
#pragma once

#include <string>

namespace moe::text {

// The PCRE2 pattern with the same matches as `pattern` under Oniguruma; throws MOE_ERR_UNSUPPORTED
// (prefixed with `where`) for constructs it cannot translate.
std::string onig_to_pcre2(const std::string& pattern, const std::string& where);

}  // namespace moe::text
