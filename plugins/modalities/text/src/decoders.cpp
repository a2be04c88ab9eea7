#include <charconv>

#include "byte_level_alphabet.h"
#include "decoder.h"
#include "pre_tokenizer_types.h"
#include "compiled_regex.h"
#include "utf8.h"

namespace moe::text {
namespace {

constexpr int kMaxNesting = 16;

std::string join(const std::vector<std::string>& tokens, std::string_view separator) {
  size_t size = tokens.empty() ? 0 : (tokens.size() - 1) * separator.size();
  for (const auto& t : tokens) size += t.size();
  std::string out;
  out.reserve(size);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += separator;
    out += tokens[i];
  }
  return out;
}

// Byte-level characters back to bytes; a token with other characters (an added token such as
// "<｜end▁of▁sentence｜>") is kept as it is written.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      auto raw = byte_level_decode(t);
      bytes += raw ? *raw : t;
    }
    tokens.assign(1, std::move(bytes));
  }
};

// The replacement character becomes a space; in the first token it is dropped (it was prepended).
class MetaspaceDecoder final : public Decoder {
 public:
  explicit MetaspaceDecoder(MetaspaceOptions o) : o_(std::move(o)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      bool drop = i == 0 && o_.prepend != PrependScheme::Never;
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, o_.replacement.size(), o_.replacement) == 0) {
          if (!drop) out += ' ';
          pos += o_.replacement.size();
        } else {
          out += t[pos++];
        }
      }
      t = std::move(out);
    }
  }

 private:
  MetaspaceOptions o_;
};

// Runs of <0xHH> tokens become the bytes they name.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    bool in_run = false;
    for (std::string& t : tokens) {
      int value = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto [end, ec] = std::from_chars(t.data() + 3, t.data() + 5, value, 16);
        if (ec != std::errc() || end != t.data() + 5) value = -1;
      }
      if (value >= 0) {
        bytes += static_cast<char>(value);
        in_run = true;
        continue;
      }
      if (in_run) out.push_back(std::move(bytes));
      bytes.clear();
      in_run = false;
      out.push_back(std::move(t));
    }
    if (in_run) out.push_back(std::move(bytes));
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override { tokens.assign(1, join(tokens, "")); }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character from each token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    size_t c = content_.size();
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && end - begin >= c && t.compare(begin, c, content_) == 0; ++k) begin += c;
      for (size_t k = 0; k < stop_ && end - begin >= c && t.compare(end - c, c, content_) == 0; ++k) end -= c;
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string out;
    for (std::string& t : tokens) {
      out.clear();
      size_t copied = 0;
      pattern_.for_each_match(t, [&](size_t begin, size_t end) {
        out.append(t, copied, begin - copied);
        out += content_;
        copied = end;
      });
      if (copied == 0 && out.empty()) continue;  // no match: the token stays as it is
      out.append(t, copied, std::string::npos);
      t.swap(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

std::string one_character(const JsonNode& node) {
  std::string s = node.string();
  size_t pos = 0;
  if (s.empty() || (next_code_point(s, pos), pos != s.size())) node.error(MOE_ERR_FORMAT, "expected exactly one character");
  return s;
}

}  // namespace

void DecoderChain::add(const JsonNode& node, int depth) {
  if (depth > kMaxNesting) node.error(MOE_ERR_FORMAT, "decoder Sequences are nested too deeply");
  present_ = true;
  std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("decoders");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i), depth + 1);
  } else if (type == "ByteLevel") {
    steps_.push_back(std::make_unique<ByteLevelDecoder>());
  } else if (type == "Metaspace") {
    steps_.push_back(std::make_unique<MetaspaceDecoder>(parse_metaspace_options(node)));
  } else if (type == "ByteFallback") {
    steps_.push_back(std::make_unique<ByteFallbackDecoder>());
  } else if (type == "Fuse") {
    steps_.push_back(std::make_unique<FuseDecoder>());
  } else if (type == "Strip") {
    steps_.push_back(std::make_unique<StripDecoder>(one_character(node.at("content")),
                                                    static_cast<size_t>(node.at("start").integer(0, 1 << 20)),
                                                    static_cast<size_t>(node.at("stop").integer(0, 1 << 20))));
  } else if (type == "Replace") {
    JsonNode pattern = node.at("pattern");
    std::string content = node.at("content").string();
    if (auto r = pattern.find("Regex"))
      steps_.push_back(std::make_unique<ReplaceDecoder>(Regex::onig(r->string(), r->where(), true), content));
    else if (auto s = pattern.find("String"))
      steps_.push_back(std::make_unique<ReplaceDecoder>(Regex::literal(s->string(), s->where()), content));
    else
      pattern.error(MOE_ERR_FORMAT, "expected {\"Regex\": ...} or {\"String\": ...}");
  } else {
    node.error(MOE_ERR_UNSUPPORTED, "the decoder type \"" + type +
                                        "\" is not supported (supported: ByteLevel, Metaspace, ByteFallback, Fuse, "
                                        "Strip, Replace, Sequence)");
  }
}

std::string DecoderChain::decode(std::vector<std::string> tokens) const {
  if (!present_) return join(tokens, " ");
  for (const auto& step : steps_) step->decode_chain(tokens);
  return join(tokens, "");
}

}  // namespace moe::text
