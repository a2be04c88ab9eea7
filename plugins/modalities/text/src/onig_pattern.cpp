#include "onig_pattern.h"

#include <cctype>
#include <map>

#include "text_error.h"

namespace moe::text {
namespace {

constexpr char kWordChars[] = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr char kHexChars[] = "0-9A-Fa-f";

std::string word_class() { return std::string("[") + kWordChars + "]"; }
std::string non_word_class() { return std::string("[^") + kWordChars + "]"; }

// Oniguruma accepts long general-category names; PCRE2 only the short ones.
const std::map<std::string, std::string>& category_names() {
  static const std::map<std::string, std::string> names = {
      {"Letter", "L"}, {"Cased_Letter", "L&"}, {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"},
      {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"}, {"Mark", "M"},
      {"Combining_Mark", "M"}, {"Nonspacing_Mark", "Mn"}, {"Spacing_Mark", "Mc"}, {"Enclosing_Mark", "Me"},
      {"Number", "N"}, {"Decimal_Number", "Nd"}, {"Letter_Number", "Nl"}, {"Other_Number", "No"},
      {"Punctuation", "P"}, {"Connector_Punctuation", "Pc"}, {"Dash_Punctuation", "Pd"},
      {"Open_Punctuation", "Ps"}, {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"},
      {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"}, {"Symbol", "S"}, {"Math_Symbol", "Sm"},
      {"Currency_Symbol", "Sc"}, {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"}, {"Separator", "Z"},
      {"Space_Separator", "Zs"}, {"Line_Separator", "Zl"}, {"Paragraph_Separator", "Zp"}, {"Other", "C"},
      {"Control", "Cc"}, {"Format", "Cf"}, {"Surrogate", "Cs"}, {"Private_Use", "Co"}, {"Unassigned", "Cn"},
      {"Space", "White_Space"}, {"Alpha", "Alphabetic"}};
  return names;
}

class Translator {
 public:
  Translator(const std::string& pattern, const std::string& where) : p_(pattern), where_(where) {}

  std::string run() {
    while (i_ < p_.size()) {
      char c = p_[i_];
      if (c == '\\') {
        out_ += escape(false);
      } else if (c == '[') {
        character_class();
      } else {
        out_ += c;
        ++i_;
      }
    }
    return out_;
  }

 private:
  [[noreturn]] void unsupported(const std::string& what) const {
    fail(MOE_ERR_UNSUPPORTED, where_ + ": the regex \"" + p_ + "\" uses " + what + " at offset " +
                                  std::to_string(i_) + ", which this tokenizer cannot translate to PCRE2");
  }

  // Reads "{...}" after \p / \P / \x and returns the name inside (i_ moves past it).
  std::string braced() {
    size_t close = p_.find('}', i_);
    if (i_ >= p_.size() || p_[i_] != '{' || close == std::string::npos) unsupported("an unterminated \\p{...} or \\x{...}");
    std::string name = p_.substr(i_ + 1, close - i_ - 1);
    i_ = close + 1;
    return name;
  }

  // Translates the escape at i_ (which points at the backslash).
  std::string escape(bool in_class) {
    if (i_ + 1 >= p_.size()) unsupported("a trailing backslash");
    char e = p_[i_ + 1];
    i_ += 2;
    switch (e) {
      case 's': return "\\p{White_Space}";
      case 'S': return "\\P{White_Space}";
      case 'w': return in_class ? std::string(kWordChars) : word_class();
      case 'W':
        if (in_class) unsupported("\\W inside a character class");
        return non_word_class();
      case 'h': return in_class ? std::string(kHexChars) : std::string("[") + kHexChars + "]";
      case 'H':
        if (in_class) unsupported("\\H inside a character class");
        return std::string("[^") + kHexChars + "]";
      case 'b':
        if (in_class) return "\\x{08}";  // [\b] is a backspace in both engines
        return "(?:(?<=" + word_class() + ")(?!" + word_class() + ")|(?<!" + word_class() + ")(?=" + word_class() + "))";
      case 'B':
        if (in_class) unsupported("\\B inside a character class");
        return "(?:(?<=" + word_class() + ")(?=" + word_class() + ")|(?<!" + word_class() + ")(?!" + word_class() + "))";
      case 'u': {
        if (i_ + 4 > p_.size()) unsupported("an incomplete \\uHHHH escape");
        std::string hex = p_.substr(i_, 4);
        for (char h : hex)
          if (!std::isxdigit(static_cast<unsigned char>(h))) unsupported("an incomplete \\uHHHH escape");
        i_ += 4;
        return "\\x{" + hex + "}";
      }
      case 'p':
      case 'P': {
        std::string name = braced();
        bool negated = e == 'P';
        if (!name.empty() && name[0] == '^') {
          negated = !negated;
          name.erase(0, 1);
        }
        if (name == "Word") {
          if (!negated) return in_class ? std::string(kWordChars) : word_class();
          if (in_class) unsupported("\\P{Word} inside a character class");
          return non_word_class();
        }
        auto it = category_names().find(name);
        if (it != category_names().end()) name = it->second;
        return std::string(negated ? "\\P{" : "\\p{") + name + "}";
      }
      case 'x':
        if (i_ < p_.size() && p_[i_] == '{') return "\\x{" + braced() + "}";
        return "\\x";
      default: return std::string("\\") + e;
    }
  }

  void character_class() {
    out_ += '[';
    ++i_;
    if (i_ < p_.size() && p_[i_] == '^') {
      out_ += '^';
      ++i_;
    }
    // A ']' right after the opening bracket is literal (as in PCRE2).
    if (i_ < p_.size() && p_[i_] == ']') {
      out_ += "\\]";
      ++i_;
    }
    while (i_ < p_.size()) {
      char c = p_[i_];
      if (c == ']') {
        out_ += ']';
        ++i_;
        return;
      }
      if (c == '\\') {
        out_ += escape(true);
      } else if (c == '[' && i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
        size_t close = p_.find(":]", i_ + 2);
        if (close == std::string::npos) unsupported("an unterminated POSIX bracket [:...:]");
        out_ += p_.substr(i_, close + 2 - i_);
        i_ = close + 2;
      } else if (c == '[') {
        unsupported("a nested character class");
      } else if (c == '&' && i_ + 1 < p_.size() && p_[i_ + 1] == '&') {
        unsupported("a character class intersection (&&)");
      } else {
        out_ += c;
        ++i_;
      }
    }
    unsupported("an unterminated character class");
  }

  const std::string& p_;
  const std::string& where_;
  std::string out_;
  size_t i_ = 0;
};

}  // namespace

std::string onig_to_pcre2(const std::string& pattern, const std::string& where) {
  return Translator(pattern, where).run();
}

}  // namespace moe::text
