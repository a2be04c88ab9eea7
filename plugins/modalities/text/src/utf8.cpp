#include "utf8.h"

#include <cstring>

namespace moe::text {
namespace {

// Unicode Table 3-7: the second byte's allowed range depends on the lead byte.
bool second_byte_ok(unsigned char lead, unsigned char second) {
  if (lead == 0xE0) return second >= 0xA0 && second <= 0xBF;
  if (lead == 0xED) return second >= 0x80 && second <= 0x9F;
  if (lead == 0xF0) return second >= 0x90 && second <= 0xBF;
  if (lead == 0xF4) return second >= 0x80 && second <= 0x8F;
  return is_utf8_continuation(second);
}

// Bytes a lead byte needs in all (0 when it cannot start a sequence).
size_t needed_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

size_t well_formed_prefix(std::string_view bytes) {
  if (bytes.empty()) return 0;
  auto lead = static_cast<unsigned char>(bytes[0]);
  size_t need = needed_length(lead);
  if (need <= 1) return need;
  size_t have = 1;
  while (have < need && have < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[have]);
    bool ok = have == 1 ? second_byte_ok(lead, c) : is_utf8_continuation(c);
    if (!ok) break;
    ++have;
  }
  return have;
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    // Eight ASCII bytes at a time: the common case for prose and code.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t need = needed_length(p[i]);
    if (need == 0 || i + need > n) return i;
    if (well_formed_prefix(text.substr(i, need)) != need) return i;
    i += need;
  }
  return n;
}

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

std::string utf8_lossy(std::string_view bytes) {
  size_t bad = find_invalid_utf8(bytes);
  if (bad == bytes.size()) return std::string(bytes);
  std::string out(bytes.substr(0, bad));
  size_t i = bad;
  while (i < bytes.size()) {
    size_t need = needed_length(static_cast<unsigned char>(bytes[i]));
    size_t have = well_formed_prefix(bytes.substr(i));
    if (need != 0 && have == need) {
      out.append(bytes.substr(i, have));
      i += have;
    } else {
      out += kReplacementCharacter;
      i += have == 0 ? 1 : have;
    }
  }
  return out;
}

std::string Utf8Assembler::push(std::string_view bytes) {
  pending_.append(bytes);
  // Keep back a trailing prefix of a well-formed sequence that more bytes may complete.
  size_t keep = 0;
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    size_t start = pending_.size() - back;
    auto lead = static_cast<unsigned char>(pending_[start]);
    if (is_utf8_continuation(lead)) continue;
    size_t need = needed_length(lead);
    if (need > back && well_formed_prefix(std::string_view(pending_).substr(start)) == back) keep = back;
    break;
  }
  std::string out = utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string Utf8Assembler::finish() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace moe::text
