// UTF-8 handling and the NFC/NFD/NFKC/NFKD implementation, the latter against the Unicode
// Consortium's own conformance file (NormalizationTest.txt, Debian package unicode-data).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "unicode_normalization.h"
#include "utf8.h"

namespace moe::text {
namespace {

TEST(Utf8, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), 11u);
  EXPECT_EQ(find_invalid_utf8("中文 ok 😀"), std::string_view("中文 ok 😀").size());
  EXPECT_EQ(find_invalid_utf8("ab\xC0\x80"), 2u);          // overlong
  EXPECT_EQ(find_invalid_utf8("a\xED\xA0\x80"), 1u);       // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);    // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("abcdefgh\xE4\xB8"), 8u);    // truncated after an ASCII run
  EXPECT_EQ(find_invalid_utf8("x\x80"), 1u);               // lone continuation byte
  EXPECT_EQ(find_invalid_utf8(std::string_view("a\0b", 3)), 3u);  // U+0000 is valid
}

TEST(Utf8, LossyReplacesEachMaximalIllFormedSubsequence) {
  EXPECT_EQ(utf8_lossy("a\xE4\xB8" "b"), "a\uFFFD" "b");      // a truncated sequence is one U+FFFD
  EXPECT_EQ(utf8_lossy("\xC0\x80"), "\uFFFD\uFFFD");          // C0 can start nothing
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), "\uFFFD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // a surrogate: ED then two strays
  EXPECT_EQ(utf8_lossy("ok 中"), "ok 中");
}

TEST(Utf8, AssemblerHoldsBackOnlyIncompleteCharacters) {
  Utf8Assembler a;
  EXPECT_EQ(a.push("a\xE4"), "a");
  EXPECT_EQ(a.push("\xB8"), "");
  EXPECT_EQ(a.push("\xAD" "b"), "中b");
  EXPECT_EQ(a.push("\xF0\x9F"), "");
  EXPECT_EQ(a.push("x"), "\uFFFDx");  // can no longer complete: replaced at once
  EXPECT_EQ(a.push("\xE4"), "");
  EXPECT_EQ(a.finish(), "\uFFFD");
  EXPECT_EQ(a.push("\x80"), "\uFFFD");
}

std::string from_hex_list(const std::string& field) {
  std::istringstream in(field);
  std::string out, hex;
  while (in >> hex) append_utf8(out, static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
  return out;
}

std::string normalized(NormalForm form, const std::string& s) {
  OwnedText out;
  normalize_unicode(form, SourceText(s, 0u), out);
  return out.text;
}

// Every line of NormalizationTest.txt: c2 = NFC(c1..c3), c4 = NFC(c4, c5), c3 = NFD(c1..c3),
// c5 = NFD(c4, c5), c4 = NFKC(c1..c5), c5 = NFKD(c1..c5).
TEST(UnicodeNormalization, PassesTheUnicodeConformanceTest) {
  const char* path = "/usr/share/unicode/NormalizationTest.txt.bz2";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((std::string("bzcat ") + path + " 2>/dev/null").c_str(), "r"), pclose);
  ASSERT_TRUE(pipe) << "cannot run bzcat on " << path;
  std::string version_line;
  size_t cases = 0, failures = 0;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe.get())) {
    std::string line(buffer);
    if (line.rfind("# NormalizationTest-", 0) == 0) version_line = line;
    if (line.empty() || line[0] == '#' || line[0] == '@' || line[0] == '\n') continue;
    std::vector<std::string> c;
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 5 && std::getline(fields, f, ';'); ++i) c.push_back(from_hex_list(f));
    if (c.size() != 5) continue;
    ++cases;
    auto check = [&](NormalForm form, const char* name, const std::string& expected, std::initializer_list<int> sources) {
      for (int k : sources) {
        std::string got = normalized(form, c[k]);
        if (got != expected && ++failures <= 10)
          ADD_FAILURE() << name << "(c" << (k + 1) << ") is wrong on line: " << line;
      }
    };
    check(NormalForm::NFC, "NFC", c[1], {0, 1, 2});
    check(NormalForm::NFC, "NFC", c[3], {3, 4});
    check(NormalForm::NFD, "NFD", c[2], {0, 1, 2});
    check(NormalForm::NFD, "NFD", c[4], {3, 4});
    check(NormalForm::NFKC, "NFKC", c[3], {0, 1, 2, 3, 4});
    check(NormalForm::NFKD, "NFKD", c[4], {0, 1, 2, 3, 4});
  }
  ASSERT_GT(cases, 18000u) << "NormalizationTest.txt was not read from " << path << " (package unicode-data)";
  EXPECT_NE(version_line.find(unicode_tables_version()), std::string::npos)
      << "the test file (" << version_line << ") and the tables (" << unicode_tables_version() << ") differ in version";
  EXPECT_EQ(failures, 0u);
}

TEST(UnicodeNormalization, QuickCheckPassesNormalTextUntouched) {
  EXPECT_TRUE(is_normalized_quick(NormalForm::NFC, "plain text, 中文, émigré"));
  EXPECT_FALSE(is_normalized_quick(NormalForm::NFC, "e\u0301"));
  EXPECT_FALSE(is_normalized_quick(NormalForm::NFKC, "ﬁ"));
  EXPECT_TRUE(is_normalized_quick(NormalForm::NFC, "ﬁ"));
}

// Each output byte keeps the input range of what it came from; composition joins ranges.
TEST(UnicodeNormalization, KeepsWhereEveryByteCameFrom) {
  std::string in = "ae\u0301\uFB01z";  // a, e + combining acute, ﬁ ligature, z
  OwnedText out;
  normalize_unicode(NormalForm::NFKC, SourceText(in, 10u), out);
  ASSERT_EQ(out.text, "a\u00e9fiz");
  ASSERT_EQ(out.spans.size(), out.text.size());
  EXPECT_EQ(out.spans[0].begin, 10u);
  EXPECT_EQ(out.spans[1].begin, 11u);  // é covers e and the accent: bytes 11..14
  EXPECT_EQ(out.spans[1].end, 14u);
  EXPECT_EQ(out.spans[3].begin, 14u);  // f and i both come from the ligature, bytes 14..17
  EXPECT_EQ(out.spans[4].end, 17u);
  EXPECT_EQ(out.spans[5].begin, 17u);
}

}  // namespace
}  // namespace moe::text
