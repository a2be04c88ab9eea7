#include "tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "utf8.h"

namespace moe::text {

namespace {

// Offsets are 32-bit: one call encodes at most 4 GiB - 1 bytes.
constexpr size_t kMaxInputBytes = 0xFFFFFFFEu;
constexpr uint32_t kByteLevelSpace = 0x120;  // 'Ġ'

}  // namespace

// What one encode call works with (the tokenizer itself is never written to).
class EncodeState {
 public:
  EncodeState(Encoding& out, bool track) : out(out), track(track) {}
  void push(int32_t id, Span span) {
    out.ids.push_back(id);
    if (track) out.offsets.push_back(span);
  }
  Encoding& out;
  bool track;
  NormalizeScratch normalize;
  BpeScratch bpe;
  std::vector<WordToken> word_tokens;
};

// The end of the pre-tokenizer chain: encodes each word with the model.
class Tokenizer::ModelSink final : public PieceSink {
 public:
  ModelSink(const BpeModel& model, EncodeState& state) : model_(model), state_(state) {
    state_.bpe.drain = [this](std::vector<WordToken>& tokens) { emit(tokens); };
  }
  ~ModelSink() { state_.bpe.drain = nullptr; }
  ModelSink(const ModelSink&) = delete;
  ModelSink& operator=(const ModelSink&) = delete;

  void take(const Piece& piece) override {
    word_ = &piece;
    auto& tokens = state_.word_tokens;
    tokens.clear();
    model_.encode_word(piece.text.text(), tokens, state_.bpe);
    emit(tokens);
  }

 private:
  void emit(const std::vector<WordToken>& tokens) {
    if (!state_.track) {
      for (const WordToken& t : tokens) state_.out.ids.push_back(t.id);
      return;
    }
    std::string_view word = word_->text.text();
    for (const WordToken& t : tokens) {
      size_t begin = t.begin, end = t.end;
      while (begin > 0 && is_utf8_continuation(static_cast<unsigned char>(word[begin]))) --begin;
      while (end < word.size() && is_utf8_continuation(static_cast<unsigned char>(word[end]))) ++end;
      state_.push(t.id, word_->text.span(begin, end));
    }
  }

  const BpeModel& model_;
  EncodeState& state_;
  const Piece* word_ = nullptr;
};

Tokenizer::Tokenizer(std::string_view json_text, const std::string& name, const std::optional<TokenizerConfig>& config,
                     const std::string& config_name)
    : name_(name) {
  TokenizerJson parsed = parse_tokenizer_json(json_text, name_);
  JsonNode root(parsed.document, name_, "");
  if (!root.is_object()) root.error(MOE_ERR_FORMAT, "expected a JSON object");
  if (auto n = root.find("normalizer")) normalizer_ = NormalizerChain(*n);
  bool byte_level = false;
  if (auto p = root.find("pre_tokenizer")) pre_tokenizer_ = PreTokenizerChain(*p, byte_level);
  model_.emplace(root.at("model"), parsed, byte_level);
  static const nlohmann::json no_added_tokens = nlohmann::json::array();
  auto added = root.find("added_tokens");
  added_ = AddedVocabulary(added ? *added : JsonNode(no_added_tokens, name_, "added_tokens"), normalizer_);
  if (auto p = root.find("post_processor")) post_ = PostProcessor(*p);
  if (auto d = root.find("decoder")) decoder_ = DecoderChain(*d);
  model_unk_token_ = root.at("model").string_or("unk_token", "");
  max_id_ = std::max(model_->max_id(), added_.max_id());
  if (config) apply_config(*config, config_name);
}

Tokenizer load_tokenizer(const std::string& json_path, const std::string& config_path) {
  std::optional<TokenizerConfig> config;
  if (!config_path.empty()) config = read_tokenizer_config(config_path, config_path);
  return Tokenizer(read_file(json_path, json_path), json_path, config, config_path);
}

void Tokenizer::apply_config(const TokenizerConfig& config, const std::string& config_name) {
  config_ = config;
  if (!config.add_bos_token && !config.add_eos_token) return;
  // transformers rebuilds the post-processor from these flags, replacing tokenizer.json's.
  auto special = [&](const std::optional<std::string>& token, const char* key) {
    if (!token) fail(MOE_ERR_FORMAT, config_name + ": add_" + key + " is true but " + key + " is missing");
    int32_t id = token_to_id(*token);
    if (id < 0) fail(MOE_ERR_FORMAT, config_name + ": " + key + " \"" + *token + "\" is not a token of " + name_);
    return id;
  };
  post_ = PostProcessor();
  if (config.add_bos_token.value_or(false)) post_.before.push_back(special(config.bos_token, "bos_token"));
  if (config.add_eos_token.value_or(false)) post_.after.push_back(special(config.eos_token, "eos_token"));
}

void Tokenizer::encode(std::string_view text, bool add_special, bool want_offsets, Encoding& out) const {
  if (text.size() > kMaxInputBytes)
    fail(MOE_ERR_LIMIT, "encode: the text is " + std::to_string(text.size()) + " bytes; one call takes at most " +
                            std::to_string(kMaxInputBytes));
  size_t bad = find_invalid_utf8(text);
  if (bad != text.size()) {
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
    fail(MOE_ERR_INVALID_ARGUMENT, "encode: the text is not valid UTF-8: byte " + std::string(byte) + " at offset " +
                                       std::to_string(bad) + " does not start a well-formed sequence");
  }
  out.ids.clear();
  out.offsets.clear();
  out.ids.reserve(text.size() / 3 + 4);
  if (want_offsets) out.offsets.reserve(text.size() / 3 + 4);
  EncodeState state(out, want_offsets);
  added_.split(
      text, false, [&](size_t begin, size_t end) { encode_section(text, begin, end, state); },
      [&](int32_t id, size_t begin, size_t end) {
        state.push(id, {static_cast<uint32_t>(begin), static_cast<uint32_t>(end)});
      });
  post_process(text.size(), add_special, want_offsets, out);
}

void Tokenizer::encode_section(std::string_view input, size_t begin, size_t end, EncodeState& state) const {
  SourceText section(input.substr(begin, end - begin), static_cast<uint32_t>(begin));
  SourceText normalized = normalizer_.empty() ? section : normalizer_.run(section, state.normalize, state.track);
  if (normalized.empty()) return;
  bool at_origin = begin == 0;
  ModelSink sink(*model_, state);
  if (!added_.has_normalized_tokens()) {
    pre_tokenizer_.run(Piece{normalized, at_origin}, sink, state.track);
    return;
  }
  added_.split(
      normalized.text(), true,
      [&](size_t b, size_t e) {
        pre_tokenizer_.run(Piece{normalized.slice(b, e), at_origin && b == 0}, sink, state.track);
      },
      [&](int32_t id, size_t b, size_t e) { state.push(id, state.track ? normalized.span(b, e) : Span{}); });
}

void Tokenizer::post_process(size_t text_length, bool add_special, bool track, Encoding& out) const {
  if (post_.trim_offsets && track) {
    // ByteLevel's trim_offsets: offsets leave out the spaces a token starts or ends with.
    for (size_t i = 0; i < out.ids.size(); ++i) {
      const std::string* t = token_text(out.ids[i]);
      if (!t) continue;
      size_t leading = 0, leading_bytes = 0, trailing_bytes = 0;
      std::vector<uint32_t> cps;
      for (size_t pos = 0; pos < t->size();) cps.push_back(next_code_point(*t, pos));
      auto space_bytes = [](uint32_t c) -> size_t {
        if (c == kByteLevelSpace) return 1;
        if (!is_white_space(c)) return 0;
        std::string s;
        append_utf8(s, c);
        return s.size();
      };
      for (uint32_t c : cps) {
        size_t b = space_bytes(c);
        if (!b) break;
        ++leading;
        leading_bytes += b;
      }
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) {
        size_t b = space_bytes(*it);
        if (!b) break;
        trailing_bytes += b;
      }
      Span& s = out.offsets[i];
      bool is_first = i == 0 || s.begin == 0;
      if (leading && !(is_first && post_.trim_add_prefix_space && leading == 1))
        s.begin = static_cast<uint32_t>(std::min<size_t>(s.begin + leading_bytes, s.end));
      if (trailing_bytes && s.end >= trailing_bytes)
        s.end = static_cast<uint32_t>(std::max<size_t>(s.end - trailing_bytes, s.begin));
    }
  }
  if (!add_special || (post_.before.empty() && post_.after.empty())) return;
  auto length = static_cast<uint32_t>(text_length);
  out.ids.insert(out.ids.begin(), post_.before.begin(), post_.before.end());
  out.ids.insert(out.ids.end(), post_.after.begin(), post_.after.end());
  if (track) {
    out.offsets.insert(out.offsets.begin(), post_.before.size(), Span{0, 0});
    out.offsets.insert(out.offsets.end(), post_.after.size(), Span{length, length});
  }
}

const std::string* Tokenizer::token_text(int32_t id) const {
  if (const AddedToken* a = added_.by_id(id)) return &a->content;
  return model_->id_to_token(id);
}

std::string Tokenizer::decode_bytes(const int32_t* ids, size_t count, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    int32_t id = ids[i];
    if (const AddedToken* a = added_.by_id(id)) {
      if (!(skip_special && a->special)) tokens.push_back(a->content);
      continue;
    }
    const std::string* t = model_->id_to_token(id);
    if (!t)
      fail(MOE_ERR_INVALID_ARGUMENT, "decode: ids[" + std::to_string(i) + "] = " + std::to_string(id) +
                                         " is not a token of " + name_ + " (its ids are 0.." + std::to_string(max_id_) + ")");
    tokens.push_back(*t);
  }
  return decoder_.decode(std::move(tokens));
}

std::string Tokenizer::decode(const int32_t* ids, size_t count, bool skip_special) const {
  return utf8_lossy(decode_bytes(ids, count, skip_special));
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  int32_t id = added_.token_to_id(token);
  return id >= 0 ? id : model_->token_to_id(token);
}

bool Tokenizer::is_known(int32_t id) const { return token_text(id) != nullptr; }

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_.by_id(id);
  return a && a->special;
}

int32_t Tokenizer::special_token_id(std::string_view role) const {
  const std::optional<std::string>* token = nullptr;
  if (role == "bos") token = &config_.bos_token;
  if (role == "eos") token = &config_.eos_token;
  if (role == "pad") token = &config_.pad_token;
  if (role == "unk") {
    if (config_.unk_token) return token_to_id(*config_.unk_token);
    return model_unk_token_.empty() ? -1 : token_to_id(model_unk_token_);
  }
  return token && *token ? token_to_id(**token) : -1;
}

}  // namespace moe::text
