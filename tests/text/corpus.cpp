#include "corpus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace moe::test {
namespace {

namespace fs = std::filesystem;

// splitmix64: a fixed, portable generator (std distributions differ between standard libraries).
uint64_t next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
size_t below(uint64_t& state, size_t n) { return static_cast<size_t>(next(state) % n); }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("corpus input missing: " + path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

struct Range {
  uint32_t first, last;
};

// Fully assigned blocks (or parts of blocks) since Unicode 13 at the latest.
const std::vector<Range>& stable_ranges() {
  static const std::vector<Range> ranges = {
      {0x0020, 0x007E},   {0x00A0, 0x00FF},   {0x0100, 0x017F},   {0x0180, 0x024F},   {0x0300, 0x036F},
      {0x0391, 0x03A1},   {0x03A3, 0x03C9},   {0x0400, 0x04FF},   {0x05D0, 0x05EA},   {0x0620, 0x0652},
      {0x0660, 0x0669},   {0x0905, 0x0939},   {0x093E, 0x094D},   {0x0966, 0x096F},   {0x0E01, 0x0E3A},
      {0x0E40, 0x0E5B},   {0x1100, 0x1112},   {0x1161, 0x1175},   {0x11A8, 0x11C2},   {0x2010, 0x2027},
      {0x2030, 0x205E},   {0x2080, 0x208E},   {0x20A0, 0x20B5},   {0x2100, 0x214F},   {0x2190, 0x22FF},
      {0x2460, 0x24FF},   {0x2500, 0x257F},   {0x3001, 0x303F},   {0x3041, 0x3096},   {0x30A1, 0x30FA},
      {0x4E00, 0x9FA5},   {0xAC00, 0xD7A3},   {0xFB00, 0xFB06},   {0xFF01, 0xFF5E},   {0xFF61, 0xFF9F},
      {0x1D400, 0x1D454}, {0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F}, {0x20000, 0x2A6D6}, {0x0001, 0x001F},
      {0x007F, 0x009F},
  };
  return ranges;
}

// Whitespace and format characters on which regex engines historically disagree.
constexpr uint32_t kTrickySpaces[] = {0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x0085, 0x00A0, 0x1680, 0x180E,
                                      0x2000, 0x2007, 0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF,
                                      0xFFFC, 0xFFFD};

std::string random_digits(uint64_t& s) {
  static const char* const separators[] = {"", " ", ",", ".", "-", ":", "/", "_", "e", "x", " + "};
  std::string out;
  size_t runs = 1 + below(s, 4);
  for (size_t r = 0; r < runs; ++r) {
    if (r) out += separators[below(s, std::size(separators))];
    size_t length = below(s, 10) == 0 ? 100 + below(s, 300) : 1 + below(s, 40);
    uint32_t zero = below(s, 8) == 0 ? (below(s, 2) ? 0x0660 : 0xFF10) : '0';  // Arabic-Indic, fullwidth
    for (size_t i = 0; i < length; ++i) append_utf8(out, zero + static_cast<uint32_t>(below(s, 10)));
  }
  if (below(s, 3) == 0) out = "Total: " + out + " units";
  return out;
}

std::string random_whitespace(uint64_t& s) {
  static const char* const pieces[] = {" ", "  ", "    ", "\t", "\n", "\r\n", "\n\n", "\r", "\u3000", "\u00a0",
                                       "\u2009", "\u0085", "\u2028", "\v", "\f"};
  static const char* const words[] = {"word", "x", "中文", "é", "42", "!", "end", "(", ")"};
  std::string out;
  size_t n = 1 + below(s, 8);
  for (size_t i = 0; i < n; ++i) {
    size_t run = 1 + below(s, below(s, 4) == 0 ? 40 : 4);
    for (size_t k = 0; k < run; ++k) out += pieces[below(s, std::size(pieces))];
    if (below(s, 3)) out += words[below(s, std::size(words))];
  }
  return out;
}

std::string random_emoji(uint64_t& s) {
  static const char* const parts[] = {"😀", "👍", "🏽", "👨‍👩‍👧‍👦", "🇺🇸", "🇯🇵", "❤️", "✨", "🔥", "🙏🏿", "1️⃣", "🏳️‍🌈",
                                      "🧑‍💻", "😂", "🤖", "🌍", "🎉", "👀", "✌🏼", "🫠"};
  std::string out;
  size_t n = 1 + below(s, 12);
  for (size_t i = 0; i < n; ++i) {
    if (below(s, 3) == 0) out += " ";
    if (below(s, 5) == 0) out += "hi";
    if (below(s, 2)) {
      out += parts[below(s, std::size(parts))];
    } else {
      append_utf8(out, 0x1F600 + static_cast<uint32_t>(below(s, 0x50)));
      if (below(s, 3) == 0) append_utf8(out, 0x1F3FB + static_cast<uint32_t>(below(s, 5)));
    }
  }
  return out;
}

}  // namespace

std::string random_unicode_string(uint64_t& s, size_t max_code_points) {
  const auto& ranges = stable_ranges();
  // Each string mixes a few blocks, as real text mixes a few scripts.
  Range picks[3];
  for (Range& r : picks) r = ranges[below(s, ranges.size())];
  std::string out;
  size_t n = 1 + below(s, max_code_points);
  for (size_t i = 0; i < n; ++i) {
    size_t roll = below(s, 20);
    if (roll == 0) {
      out += ' ';
    } else if (roll == 1) {
      append_utf8(out, kTrickySpaces[below(s, std::size(kTrickySpaces))]);
    } else {
      const Range& r = picks[below(s, 3)];
      append_utf8(out, r.first + static_cast<uint32_t>(below(s, r.last - r.first + 1)));
    }
  }
  return out;
}

std::vector<CorpusLine> build_corpus(const CorpusInputs& in) {
  uint64_t s = in.seed;
  std::vector<CorpusLine> out;
  auto add = [&](const char* category, std::string text) {
    if (!text.empty()) out.push_back({category, std::move(text)});
  };

  // English prose: lines of the fortune files, and whole fortunes joined into paragraphs.
  if (!fs::is_directory(in.fortunes_dir))
    throw std::runtime_error("corpus input missing: " + in.fortunes_dir + " (install the Debian package fortunes)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(in.fortunes_dir)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.find('.') == std::string::npos) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> prose;
  for (const auto& f : files)
    for (auto& line : read_lines(f))
      if (line != "%" && line.size() > 2) prose.push_back(line);
  if (prose.size() < 1000) throw std::runtime_error("corpus input too small: " + in.fortunes_dir);
  for (int i = 0; i < 650; ++i) add("prose", prose[below(s, prose.size())]);
  for (int i = 0; i < 100; ++i) {
    size_t at = below(s, prose.size() - 8);
    std::string paragraph;
    for (size_t k = 0; k < 2 + below(s, 6); ++k) paragraph += prose[at + k] + (below(s, 2) ? "\n" : " ");
    add("prose", paragraph);
  }

  // Other scripts: each line as written, and pairs of lines run together.
  std::vector<std::string> multilingual = read_lines(in.multilingual_file);
  for (const auto& line : multilingual) add("multilingual", line);
  for (int i = 0; i < 150; ++i)
    add("multilingual", multilingual[below(s, multilingual.size())] + (below(s, 2) ? " " : "") +
                            multilingual[below(s, multilingual.size())]);

  for (int i = 0; i < 150; ++i) add("emoji", random_emoji(s));

  // Code: every 5th line of the given sources, up to 350 lines.
  std::vector<std::string> code;
  for (const auto& f : in.code_files) {
    auto lines = read_lines(f);
    for (size_t i = 0; i < lines.size(); i += 5)
      if (!lines[i].empty()) code.push_back(lines[i]);
  }
  for (size_t i = 0; i < code.size() && i < 350; ++i) add("code", code[i]);
  for (int i = 0; i < 40; ++i) {
    size_t at = below(s, code.size() > 6 ? code.size() - 6 : 1);
    std::string block;
    for (size_t k = 0; k < 6 && at + k < code.size(); ++k) block += code[at + k] + "\n";
    add("code", block);
  }

  for (int i = 0; i < 150; ++i) add("digits", random_digits(s));
  for (int i = 0; i < 150; ++i) add("whitespace", random_whitespace(s));

  // Special tokens inside text: in prose, at either end, next to each other, touching words.
  if (!in.special_tokens.empty()) {
    for (int i = 0; i < 200; ++i) {
      std::string text = prose[below(s, prose.size())];
      size_t inserts = 1 + below(s, 3);
      for (size_t k = 0; k < inserts; ++k) {
        const std::string& t = in.special_tokens[below(s, in.special_tokens.size())];
        size_t at = below(s, 4) == 0 ? (below(s, 2) ? 0 : text.size()) : below(s, text.size() + 1);
        while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
        text.insert(at, below(s, 3) == 0 ? " " + t + " " : t);
      }
      add("special", text);
    }
  }

  for (int i = 0; i < 450; ++i) add("random", random_unicode_string(s, below(s, 5) == 0 ? 200 : 40));
  return out;
}

}  // namespace moe::test
