// ByteLevel: optionally a leading space, optionally GPT-2's word regex; the byte-level spelling itself
// costs nothing here because the model works on raw bytes (bpe_model.h).
#include "pre_tokenizer_types.h"
#include "compiled_regex.h"
#include "split_behavior.h"

namespace moe::text {
namespace {

constexpr char kGpt2Pattern[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Regex> words)
      : add_prefix_space_(add_prefix_space), words_(std::move(words)) {}

  void split(const Piece& piece, PieceSink& out, bool track) const override {
    if (add_prefix_space_ && piece.text.text()[0] != ' ') {
      // The added space shares the first character's origin, as in Hugging Face's prepend.
      OwnedText spaced;
      spaced.track = track;
      size_t first_char = 1;
      while (first_char < piece.text.size() && (static_cast<unsigned char>(piece.text.text()[first_char]) & 0xC0) == 0x80)
        ++first_char;
      spaced.append(" ", track ? piece.text.span(0, first_char) : Span{});
      spaced.append(piece.text, 0, piece.text.size());
      cut(Piece{spaced.view(), piece.at_origin}, out);
    } else {
      cut(piece, out);
    }
  }

 private:
  void cut(const Piece& piece, PieceSink& out) const {
    if (!words_) {
      out.take(piece);
      return;
    }
    std::string_view text = piece.text.text();
    split_runs(
        text.size(), [&](auto&& on_match) { words_->for_each_match(text, on_match); }, SplitBehavior::Isolated, false,
        [&](size_t begin, size_t end) {
          if (end > begin) out.take(Piece{piece.text.slice(begin, end), piece.at_origin && begin == 0});
        });
  }

  bool add_prefix_space_;
  std::optional<Regex> words_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_byte_level(const JsonNode& node) {
  std::optional<Regex> words;
  if (node.boolean_or("use_regex", true)) words = Regex::onig(kGpt2Pattern, node.where());
  return std::make_unique<ByteLevelPreTokenizer>(node.boolean_or("add_prefix_space", true), std::move(words));
}

}  // namespace moe::text
