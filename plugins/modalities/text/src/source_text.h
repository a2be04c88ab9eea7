// The text the pipeline works on, with where each byte came from in the caller's input, so that
// every token can report the input byte range it covers even after normalisers and pre-tokenizers
// rewrote the text (NFC, Prepend, Replace, Metaspace).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::text {

// A byte range [begin, end) of the caller's input. Inputs are limited to 4 GiB per call.
struct Span {
  uint32_t begin = 0;
  uint32_t end = 0;
};

// A view of text bytes and their origins: either byte i came from input byte base + i, or
// spans[i] says which input range it came from (several bytes of one rewritten character share it).
class SourceText {
 public:
  SourceText() = default;
  SourceText(std::string_view text, uint32_t base) : text_(text), base_(base) {}
  SourceText(std::string_view text, const Span* spans) : text_(text), spans_(spans) {}

  std::string_view text() const { return text_; }
  size_t size() const { return text_.size(); }
  bool empty() const { return text_.empty(); }

  // The input range bytes [begin, end) came from (end > begin).
  Span span(size_t begin, size_t end) const {
    if (!spans_) return {static_cast<uint32_t>(base_ + begin), static_cast<uint32_t>(base_ + end)};
    Span first = spans_[begin], last = spans_[end - 1];
    return {first.begin < last.begin ? first.begin : last.begin, first.end > last.end ? first.end : last.end};
  }
  Span byte_span(size_t i) const { return span(i, i + 1); }

  SourceText slice(size_t begin, size_t end) const {
    if (!spans_) return SourceText(text_.substr(begin, end - begin), static_cast<uint32_t>(base_ + begin));
    return SourceText(text_.substr(begin, end - begin), spans_ + begin);
  }

 private:
  std::string_view text_;
  const Span* spans_ = nullptr;
  uint32_t base_ = 0;
};

// Rewritten text that owns its bytes and, when offsets are tracked, one span per byte.
struct OwnedText {
  std::string text;
  std::vector<Span> spans;
  bool track = true;

  void clear() {
    text.clear();
    spans.clear();
  }
  // Appends bytes that all came from input range `from`.
  void append(std::string_view bytes, Span from) {
    text.append(bytes);
    if (track) spans.insert(spans.end(), bytes.size(), from);
  }
  // Appends bytes copied from `source` (keeping their origins).
  void append(const SourceText& source, size_t begin, size_t end) {
    text.append(source.text().substr(begin, end - begin));
    if (track)
      for (size_t i = begin; i < end; ++i) spans.push_back(source.byte_span(i));
  }
  // Untracked text keeps no origins; its view reports offsets from 0, which nobody reads.
  SourceText view() const { return track ? SourceText(text, spans.data()) : SourceText(text, 0u); }
};

// A piece of text moving through the pipeline; at_origin says it starts at input offset 0
// (Metaspace's prepend_scheme "first" prepends only there).
struct Piece {
  SourceText text;
  bool at_origin = false;
};

}  // namespace moe::text
