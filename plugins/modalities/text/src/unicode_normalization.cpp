#include "unicode_normalization.h"

#include <algorithm>
#include <vector>

#include "normalization_tables.inc"
#include "utf8.h"

namespace moe::text {
namespace {

namespace ut = unicode_tables;

constexpr uint32_t kHangulSBase = 0xAC00, kHangulLBase = 0x1100, kHangulVBase = 0x1161, kHangulTBase = 0x11A7;
constexpr uint32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr uint32_t kHangulNCount = kHangulVCount * kHangulTCount, kHangulSCount = kHangulLCount * kHangulNCount;

constexpr uint16_t kCccMask = 0xFF;
constexpr uint16_t kNfdNo = 1u << 8, kNfcNotYes = 1u << 9, kNfkdNo = 1u << 10, kNfkcNotYes = 1u << 11;
constexpr uint16_t kCompositionSecond = 1u << 12;

uint16_t props(uint32_t cp) {
  if (cp > 0x10FFFF) return 0;
  return ut::kPropBlocks[ut::kPropIndex[cp >> ut::kBlockShift]][cp & ((1u << ut::kBlockShift) - 1)];
}

bool composes(NormalForm f) { return f == NormalForm::NFC || f == NormalForm::NFKC; }
bool compatibility(NormalForm f) { return f == NormalForm::NFKC || f == NormalForm::NFKD; }
uint16_t quick_check_bit(NormalForm f) {
  switch (f) {
    case NormalForm::NFC: return kNfcNotYes;
    case NormalForm::NFD: return kNfdNo;
    case NormalForm::NFKC: return kNfkcNotYes;
    default: return kNfkdNo;
  }
}

bool is_hangul_syllable(uint32_t cp) { return cp >= kHangulSBase && cp < kHangulSBase + kHangulSCount; }
bool is_hangul_vowel_or_trailing(uint32_t cp) {
  return (cp >= kHangulVBase && cp < kHangulVBase + kHangulVCount) ||
         (cp > kHangulTBase && cp < kHangulTBase + kHangulTCount);
}

// The full decomposition of cp for the form (empty when cp maps to itself); Hangul not included.
std::basic_string_view<uint32_t> decomposition(uint32_t cp, NormalForm form) {
  uint16_t p = props(cp);
  if (!(p & (compatibility(form) ? kNfkdNo : kNfdNo))) return {};
  auto* end = ut::kDecompositions + std::size(ut::kDecompositions);
  auto* it = std::lower_bound(ut::kDecompositions, end, cp,
                              [](const ut::Decomposition& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) return {};
  if (compatibility(form)) return {ut::kDecompositionData + it->compat_offset, it->compat_length};
  return {ut::kDecompositionData + it->canon_offset, it->canon_length};
}

// The first code point cp decomposes to under the form.
uint32_t first_decomposed(uint32_t cp, NormalForm form) {
  if (is_hangul_syllable(cp)) return kHangulLBase;
  auto d = decomposition(cp, form);
  return d.empty() ? cp : d[0];
}

// Normalisation of the text before a character never depends on what follows it when this holds
// (it starts with a starter that cannot combine with anything before it).
bool is_boundary_before(uint32_t cp, NormalForm form) {
  uint32_t first = first_decomposed(cp, form);
  uint16_t p = props(first);
  if ((p & kCccMask) != 0) return false;
  return !composes(form) || (!(p & kCompositionSecond) && !is_hangul_vowel_or_trailing(first));
}

uint32_t compose_pair(uint32_t first, uint32_t second) {
  if (first >= kHangulLBase && first < kHangulLBase + kHangulLCount && second >= kHangulVBase &&
      second < kHangulVBase + kHangulVCount)
    return kHangulSBase + ((first - kHangulLBase) * kHangulVCount + (second - kHangulVBase)) * kHangulTCount;
  if (is_hangul_syllable(first) && (first - kHangulSBase) % kHangulTCount == 0 && second > kHangulTBase &&
      second < kHangulTBase + kHangulTCount)
    return first + (second - kHangulTBase);
  uint64_t key = (static_cast<uint64_t>(first) << 21) | second;
  auto* end = ut::kCompositions + std::size(ut::kCompositions);
  auto* it = std::lower_bound(ut::kCompositions, end, key,
                              [](const ut::Composition& c, uint64_t k) { return c.key < k; });
  return it != end && it->key == key ? it->composite : 0;
}

struct Mark {
  uint32_t cp;
  uint8_t ccc;
  Span span;
};

// Decomposes, reorders and (for NFC/NFKC) recomposes one segment, then appends it to out.
class SegmentNormalizer {
 public:
  explicit SegmentNormalizer(NormalForm form) : form_(form) {}

  void run(const SourceText& source, size_t begin, size_t end, OwnedText& out) {
    marks_.clear();
    std::string_view text = source.text();
    for (size_t pos = begin; pos < end;) {
      size_t start = pos;
      uint32_t cp = next_code_point(text, pos);
      Span span = out.track ? source.span(start, pos) : Span{};
      if (is_hangul_syllable(cp)) {
        uint32_t s = cp - kHangulSBase;
        add(kHangulLBase + s / kHangulNCount, span);
        add(kHangulVBase + (s % kHangulNCount) / kHangulTCount, span);
        if (s % kHangulTCount) add(kHangulTBase + s % kHangulTCount, span);
        continue;
      }
      auto d = decomposition(cp, form_);
      if (d.empty()) {
        add(cp, span);
      } else {
        for (uint32_t part : d) add(part, span);
      }
    }
    if (composes(form_)) compose();
    std::string encoded;
    for (const Mark& m : marks_) {
      encoded.clear();
      append_utf8(encoded, m.cp);
      out.append(encoded, m.span);
    }
  }

 private:
  // Appends with canonical ordering: a non-starter moves before non-starters of higher class.
  void add(uint32_t cp, Span span) {
    auto ccc = static_cast<uint8_t>(props(cp) & kCccMask);
    marks_.push_back({cp, ccc, span});
    if (ccc == 0) return;
    size_t i = marks_.size() - 1;
    while (i > 0 && marks_[i - 1].ccc > ccc) {
      std::swap(marks_[i - 1], marks_[i]);
      --i;
    }
  }

  // The canonical composition algorithm of UAX #15.
  void compose() {
    if (marks_.empty()) return;
    size_t starter = 0, out = 1;
    int last_class = marks_[0].ccc == 0 ? 0 : 256;
    bool have_starter = marks_[0].ccc == 0;
    for (size_t i = 1; i < marks_.size(); ++i) {
      Mark m = marks_[i];
      if (have_starter && (last_class < m.ccc || last_class == 0)) {
        if (uint32_t composite = compose_pair(marks_[starter].cp, m.cp)) {
          Span& s = marks_[starter].span;
          s = {std::min(s.begin, m.span.begin), std::max(s.end, m.span.end)};
          marks_[starter].cp = composite;
          continue;
        }
      }
      if (m.ccc == 0) {
        starter = out;
        have_starter = true;
      }
      last_class = m.ccc;
      marks_[out++] = m;
    }
    marks_.resize(out);
  }

  NormalForm form_;
  std::vector<Mark> marks_;
};

}  // namespace

const char* unicode_tables_version() { return ut::kUnicodeVersion; }

bool is_normalized_quick(NormalForm form, std::string_view text) {
  uint16_t bit = quick_check_bit(form);
  uint8_t last_ccc = 0;
  for (size_t pos = 0; pos < text.size();) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      last_ccc = 0;
      continue;
    }
    uint16_t p = props(next_code_point(text, pos));
    auto ccc = static_cast<uint8_t>(p & kCccMask);
    if ((p & bit) || (ccc != 0 && last_ccc > ccc)) return false;
    last_ccc = ccc;
  }
  return true;
}

void normalize_unicode(NormalForm form, const SourceText& source, OwnedText& out) {
  std::string_view text = source.text();
  uint16_t bit = quick_check_bit(form);
  SegmentNormalizer segment(form);
  // Text splits into segments at boundaries; a segment whose characters all pass the quick check
  // is copied as is, the others are normalised on their own.
  size_t seg_begin = 0, last_boundary = 0;
  bool seg_unchanged = true;
  auto flush = [&](size_t end) {
    if (end == seg_begin) return;
    if (seg_unchanged)
      out.append(source, seg_begin, end);
    else
      segment.run(source, seg_begin, end, out);
    seg_begin = end;
  };
  for (size_t pos = 0; pos < text.size();) {
    size_t start = pos;
    uint32_t cp = next_code_point(text, pos);
    uint16_t p = cp < 0x80 ? 0 : props(cp);
    bool inert = !(p & bit) && (p & kCccMask) == 0;
    if (cp < 0x80 || is_boundary_before(cp, form)) {
      // Runs of unchanged characters stay one segment.
      if (!(seg_unchanged && inert)) {
        flush(start);
        seg_unchanged = true;
      }
      last_boundary = start;
    }
    if (!inert && seg_unchanged) {
      // This character is normalised together with everything since the last boundary.
      flush(last_boundary);
      seg_unchanged = false;
    }
  }
  flush(text.size());
}

}  // namespace moe::text
