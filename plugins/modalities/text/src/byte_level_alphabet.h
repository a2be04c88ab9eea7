// GPT-2's byte-level alphabet: each byte 0..255 is shown as one printable character (U+0021..U+007E,
// U+00A1..U+00AC and U+00AE..U+00FF stand for themselves; the other 68 bytes map to U+0100..U+0143),
// so a byte-level vocabulary holds only printable strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moe::text {

// The character byte b is written as.
uint32_t byte_level_char(uint8_t b);

// The byte a character stands for, if it is one of the 256.
std::optional<uint8_t> byte_level_byte(uint32_t cp);

// The raw bytes a byte-level token spells; nullopt when a character is outside the alphabet.
std::optional<std::string> byte_level_decode(std::string_view token);
// The same into `out` (replacing its content); false when a character is outside the alphabet.
bool byte_level_decode_into(std::string_view token, std::string& out);

// The byte-level spelling of raw bytes.
std::string byte_level_encode(std::string_view bytes);

}  // namespace moe::text
