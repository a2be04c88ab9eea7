#include "byte_level_alphabet.h"

#include <array>

#include "utf8.h"

namespace moe::text {
namespace {

struct Alphabet {
  std::array<uint32_t, 256> to_char{};
  std::array<int16_t, 0x144> to_byte{};  // every character of the alphabet is below U+0144

  Alphabet() {
    to_byte.fill(-1);
    auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      uint32_t c = printable(b) ? static_cast<uint32_t>(b) : next++;
      to_char[b] = c;
      to_byte[c] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

uint32_t byte_level_char(uint8_t b) { return alphabet().to_char[b]; }

std::optional<uint8_t> byte_level_byte(uint32_t cp) {
  if (cp >= alphabet().to_byte.size() || alphabet().to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(alphabet().to_byte[cp]);
}

bool byte_level_decode_into(std::string_view token, std::string& out) {
  out.clear();
  for (size_t pos = 0; pos < token.size();) {
    auto b = byte_level_byte(next_code_point(token, pos));
    if (!b) return false;
    out += static_cast<char>(*b);
  }
  return true;
}

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string bytes;
  if (!byte_level_decode_into(token, bytes)) return std::nullopt;
  return bytes;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) append_utf8(out, byte_level_char(static_cast<uint8_t>(b)));
  return out;
}

}  // namespace moe::text
