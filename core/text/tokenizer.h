// The core's tokenizer: a tokenizer.json loaded by the text modality plugin, used through its
// moe_modality_ops. Owns the plugin's tokenizer (and each stream) and frees every array the plugin
// returns with the host allocator. Encoding and decoding only read the tokenizer, so one Tokenizer
// serves many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe {

class Context;

struct TextEncoding {
  std::vector<int32_t> ids;
  // Per id, the byte range [begin, end) of the input it came from (begin == end for BOS/EOS);
  // empty unless offsets were asked for.
  std::vector<std::pair<int64_t, int64_t>> offsets;
};

// Streaming decode for generation: push ids one at a time; each call returns the text that became
// complete (never a partial UTF-8 character). To make the first new token's text read as it would
// after the prompt (a leading "▁" becoming a space), push the prompt's last id first and drop its
// text.
class TokenStream {
 public:
  TokenStream(const TokenStream&) = delete;
  TokenStream& operator=(const TokenStream&) = delete;
  ~TokenStream();

  std::string push(int32_t id);
  // What is still held back (an incomplete character becomes U+FFFD); the stream is done after it.
  std::string finish();

 private:
  friend class Tokenizer;
  TokenStream(const moe_modality_ops& ops, void* stream) : ops_(ops), stream_(stream) {}

  const moe_modality_ops& ops_;
  void* stream_;
};

class Tokenizer {
 public:
  // Through the context's text plugin; config_path may be empty (no tokenizer_config.json).
  static std::unique_ptr<Tokenizer> load(const Context& context, const std::string& json_path,
                                         const std::string& config_path);
  // Through a given plugin table (tests, tools that load the plugin themselves).
  static std::unique_ptr<Tokenizer> load(const moe_modality_ops& ops, const std::string& json_path,
                                         const std::string& config_path);
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // Largest token id + 1.
  int64_t vocab_size() const;
  // text must be UTF-8 (MOE_ERR_INVALID_ARGUMENT names the first bad byte otherwise).
  TextEncoding encode(std::string_view text, bool add_special, bool want_offsets = false) const;
  // Encodes texts on num_threads threads (0: one per core); results are in input order.
  std::vector<TextEncoding> encode_batch(const std::vector<std::string_view>& texts, bool add_special,
                                         bool want_offsets = false, int num_threads = 0) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;
  std::optional<int32_t> token_to_id(const std::string& token) const;
  // "bos", "eos", "pad" or "unk".
  std::optional<int32_t> special_token_id(const std::string& role) const;
  std::unique_ptr<TokenStream> stream(bool skip_special) const;

 private:
  Tokenizer(const moe_modality_ops& ops, moe_plugin_tokenizer* handle) : ops_(ops), handle_(handle) {}

  const moe_modality_ops& ops_;
  moe_plugin_tokenizer* handle_;
};

}  // namespace moe
