// Split (by a regex or a literal string) and Digits: pre-tokenizers that only cut.
#include "pre_tokenizer_types.h"
#include "compiled_regex.h"
#include "split_behavior.h"

namespace moe::text {
namespace {

// Emits part [begin, end) of piece, unless it is empty.
struct PartEmitter {
  const Piece& piece;
  PieceSink& out;
  void operator()(size_t begin, size_t end) const {
    if (end > begin) out.take(Piece{piece.text.slice(begin, end), piece.at_origin && begin == 0});
  }
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void split(const Piece& piece, PieceSink& out, bool) const override {
    std::string_view text = piece.text.text();
    split_runs(
        text.size(), [&](auto&& on_match) { pattern_.for_each_match(text, on_match); }, behavior_, invert_,
        PartEmitter{piece, out});
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}

  void split(const Piece& piece, PieceSink& out, bool) const override {
    std::string_view text = piece.text.text();
    // Each ASCII digit is a match of its own (Hugging Face splits on a char predicate).
    auto for_each_digit = [&](auto&& on_match) {
      for (size_t i = 0; i < text.size(); ++i)
        if (text[i] >= '0' && text[i] <= '9') on_match(i, i + 1);
    };
    split_runs(text.size(), for_each_digit, individual_ ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false,
               PartEmitter{piece, out});
  }

 private:
  bool individual_;
};

}  // namespace

SplitBehavior parse_split_behavior(const JsonNode& node) {
  std::string b = node.string();
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  node.error(MOE_ERR_FORMAT, "unknown split behavior \"" + b +
                                 "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

std::unique_ptr<PreTokenizer> make_split(const JsonNode& node) {
  JsonNode pattern = node.at("pattern");
  std::optional<Regex> regex;
  if (auto r = pattern.find("Regex"))
    regex = Regex::onig(r->string(), r->where());
  else if (auto s = pattern.find("String"))
    regex = Regex::literal(s->string(), s->where());
  else
    pattern.error(MOE_ERR_FORMAT, "expected {\"Regex\": ...} or {\"String\": ...}");
  return std::make_unique<SplitPreTokenizer>(std::move(*regex), parse_split_behavior(node.at("behavior")),
                                             node.boolean_or("invert", false));
}

std::unique_ptr<PreTokenizer> make_digits(const JsonNode& node) {
  return std::make_unique<DigitsPreTokenizer>(node.boolean_or("individual_digits", false));
}

}  // namespace moe::text
