// UTF-8: validation, code point stepping, and the lossy conversion used when decoded bytes are not
// valid UTF-8 (each maximal ill-formed subsequence becomes one U+FFFD, the Unicode "substitution of
// maximal subparts" practice that Rust's String::from_utf8_lossy and the WHATWG decoder follow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::text {

inline constexpr char kReplacementCharacter[] = "\xEF\xBF\xBD";  // U+FFFD

// Offset of the first byte that does not start a well-formed sequence, or text.size() if all is valid.
size_t find_invalid_utf8(std::string_view text);

// Length of the sequence a lead byte starts (1 for ASCII and for bytes that cannot start one).
inline size_t utf8_sequence_length(unsigned char lead) {
  return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

inline bool is_utf8_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Decodes the code point at text[pos] of valid UTF-8 and advances pos past it.
inline uint32_t next_code_point(std::string_view text, size_t& pos) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(text[pos + i])); };
  uint32_t c = b(0);
  if (c < 0x80) {
    pos += 1;
    return c;
  }
  if (c < 0xE0) {
    c = ((c & 0x1F) << 6) | (b(1) & 0x3F);
    pos += 2;
  } else if (c < 0xF0) {
    c = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    pos += 3;
  } else {
    c = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    pos += 4;
  }
  return c;
}

void append_utf8(std::string& out, uint32_t cp);

// Length of the longest prefix of bytes that is a well-formed sequence or a prefix of one
// (0 when bytes[0] cannot start a sequence). Used to find maximal ill-formed subsequences.
size_t well_formed_prefix(std::string_view bytes);

// bytes with every maximal ill-formed subsequence replaced by U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Turns a byte stream that arrives in pieces into complete UTF-8: push() returns the text that is
// complete so far (ill-formed subsequences already replaced), holding back at most 3 bytes of a
// sequence that may still complete; finish() returns what is held back, as U+FFFD.
class Utf8Assembler {
 public:
  std::string push(std::string_view bytes);
  std::string finish();

 private:
  std::string pending_;
};

}  // namespace moe::text
