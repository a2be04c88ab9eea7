#include "normalizer.h"
#include "compiled_regex.h"
#include "unicode_normalization.h"
#include "utf8.h"

namespace moe::text {
namespace {

constexpr int kMaxNesting = 16;

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  bool apply(const SourceText& in, OwnedText& out) const override {
    if (is_normalized_quick(form_, in.text())) return false;
    normalize_unicode(form_, in, out);
    return true;
  }

 private:
  NormalForm form_;
};

// Prepends a string to non-empty text; it shares the first character's origin (as in Hugging Face).
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  bool apply(const SourceText& in, OwnedText& out) const override {
    if (in.empty() || prefix_.empty()) return false;
    size_t first_char = utf8_sequence_length(static_cast<unsigned char>(in.text()[0]));
    out.append(prefix_, out.track ? in.span(0, first_char) : Span{});
    out.append(in, 0, in.size());
    return true;
  }

 private:
  std::string prefix_;
};

// Replaces every match of a pattern; the replacement comes from the input range it replaced.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  bool apply(const SourceText& in, OwnedText& out) const override {
    std::string_view text = in.text();
    size_t copied = 0;
    bool changed = false;
    pattern_.for_each_match(text, [&](size_t begin, size_t end) {
      if (begin == end && content_.empty()) return;
      changed = true;
      out.append(in, copied, begin);
      Span from{};
      if (out.track && !text.empty()) from = end > begin ? in.span(begin, end) : in.byte_span(begin < text.size() ? begin : begin - 1);
      out.append(content_, from);
      copied = end;
    });
    if (!changed) return false;
    out.append(in, copied, text.size());
    return true;
  }

 private:
  Regex pattern_;
  std::string content_;
};

}  // namespace

void NormalizerChain::add(const JsonNode& node, int depth) {
  if (depth > kMaxNesting) node.error(MOE_ERR_FORMAT, "normalizer Sequences are nested too deeply");
  std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("normalizers");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i), depth + 1);
  } else if (type == "NFC") {
    steps_.push_back(std::make_unique<UnicodeNormalizer>(NormalForm::NFC));
  } else if (type == "NFD") {
    steps_.push_back(std::make_unique<UnicodeNormalizer>(NormalForm::NFD));
  } else if (type == "NFKC") {
    steps_.push_back(std::make_unique<UnicodeNormalizer>(NormalForm::NFKC));
  } else if (type == "NFKD") {
    steps_.push_back(std::make_unique<UnicodeNormalizer>(NormalForm::NFKD));
  } else if (type == "Prepend") {
    steps_.push_back(std::make_unique<PrependNormalizer>(node.at("prepend").string()));
  } else if (type == "Replace") {
    JsonNode pattern = node.at("pattern");
    std::string content = node.at("content").string();
    if (auto r = pattern.find("Regex"))
      steps_.push_back(std::make_unique<ReplaceNormalizer>(Regex::onig(r->string(), r->where()), content));
    else if (auto s = pattern.find("String"))
      steps_.push_back(std::make_unique<ReplaceNormalizer>(Regex::literal(s->string(), s->where()), content));
    else
      pattern.error(MOE_ERR_FORMAT, "expected {\"Regex\": ...} or {\"String\": ...}");
  } else {
    node.error(MOE_ERR_UNSUPPORTED, "the normalizer type \"" + type +
                                        "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence)");
  }
}

SourceText NormalizerChain::run(const SourceText& in, NormalizeScratch& scratch, bool track) const {
  SourceText current = in;
  size_t next = 0;
  for (const auto& step : steps_) {
    OwnedText& target = scratch.buffers[next];
    target.clear();
    target.track = track;
    if (!step->apply(current, target)) continue;
    current = target.view();
    next ^= 1;
  }
  return current;
}

std::string NormalizerChain::normalize(const std::string& text) const {
  NormalizeScratch scratch;
  return std::string(run(SourceText(text, 0u), scratch, false).text());
}

}  // namespace moe::text
