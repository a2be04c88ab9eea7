// Metaspace (SentencePiece style): spaces become U+2581, which is also prepended (always, or only
// to the text at the very start of the input for prepend_scheme "first"), then the text is
// optionally cut before each U+2581.
#include "pre_tokenizer_types.h"
#include "split_behavior.h"
#include "utf8.h"

namespace moe::text {
namespace {

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  explicit MetaspacePreTokenizer(MetaspaceOptions options) : o_(std::move(options)) {}

  void split(const Piece& piece, PieceSink& out, bool track) const override {
    const SourceText& in = piece.text;
    std::string_view text = in.text();
    OwnedText rewritten;
    rewritten.track = track;
    rewritten.text.reserve(text.size() + text.size() / 4 + o_.replacement.size());
    bool starts_with_space = text[0] == ' ' || text.substr(0, o_.replacement.size()) == o_.replacement;
    bool prepend = o_.prepend == PrependScheme::Always || (o_.prepend == PrependScheme::First && piece.at_origin);
    if (prepend && !starts_with_space) {
      size_t first_char = utf8_sequence_length(static_cast<unsigned char>(text[0]));
      rewritten.append(o_.replacement, track ? in.span(0, first_char) : Span{});
    }
    size_t run = 0;  // start of the bytes not yet copied
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != ' ') continue;
      rewritten.append(in, run, i);
      rewritten.append(o_.replacement, track ? in.byte_span(i) : Span{});
      run = i + 1;
    }
    rewritten.append(in, run, text.size());

    SourceText view = rewritten.view();
    if (!o_.split) {
      out.take(Piece{view, piece.at_origin});
      return;
    }
    std::string_view r = view.text();
    auto for_each_replacement = [&](auto&& on_match) {
      for (size_t at = r.find(o_.replacement); at != std::string_view::npos; at = r.find(o_.replacement, at + o_.replacement.size()))
        on_match(at, at + o_.replacement.size());
    };
    split_runs(r.size(), for_each_replacement, SplitBehavior::MergedWithNext, false, [&](size_t begin, size_t end) {
      if (end > begin) out.take(Piece{view.slice(begin, end), piece.at_origin && begin == 0});
    });
  }

 private:
  MetaspaceOptions o_;
};

}  // namespace

MetaspaceOptions parse_metaspace_options(const JsonNode& node) {
  MetaspaceOptions o;
  if (auto r = node.find("replacement")) {
    o.replacement = r->string();
    size_t pos = 0;
    if (o.replacement.empty() || (next_code_point(o.replacement, pos), pos != o.replacement.size()))
      r->error(MOE_ERR_FORMAT, "the replacement must be exactly one character");
  }
  if (auto scheme = node.find("prepend_scheme")) {
    std::string s = scheme->string();
    if (s == "always")
      o.prepend = PrependScheme::Always;
    else if (s == "first")
      o.prepend = PrependScheme::First;
    else if (s == "never")
      o.prepend = PrependScheme::Never;
    else
      scheme->error(MOE_ERR_FORMAT, "unknown prepend_scheme \"" + s + "\" (expected always, first or never)");
  } else if (auto legacy = node.find("add_prefix_space")) {
    o.prepend = legacy->boolean() ? PrependScheme::Always : PrependScheme::Never;
  }
  o.split = node.boolean_or("split", true);
  return o;
}

std::unique_ptr<PreTokenizer> make_metaspace(const JsonNode& node) {
  return std::make_unique<MetaspacePreTokenizer>(parse_metaspace_options(node));
}

}  // namespace moe::text
