// The core's view of a tokenizer provided by the text modality plugin (moe_modality_ops): RAII over
// the plugin's instance and over the memory it returns.
//
// Interface used by core/model (Model::load, Model::generate) and api/src/tokenizer.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "moe/moe_plugin.h"

namespace moe {

class Context;

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets;  // begin, end byte offsets per id (empty unless asked for)
};

// Streaming decode of generated ids: text comes out only when it is complete UTF-8.
class TokenStream {
 public:
  TokenStream(const moe_modality_ops& ops, void* stream);
  ~TokenStream();
  TokenStream(const TokenStream&) = delete;
  TokenStream& operator=(const TokenStream&) = delete;
  // The text that became complete with this id (may be empty).
  std::string push(int32_t id);
  // What is still pending (incomplete UTF-8 replaced by U+FFFD); the stream is finished after this.
  std::string finish();

 private:
  const moe_modality_ops& ops_;
  void* stream_;
};

class Tokenizer {
 public:
  // Loads a tokenizer.json (and an optional tokenizer_config.json; empty = none) through the
  // context's text plugin.
  static std::unique_ptr<Tokenizer> load(const Context& context, const std::string& tokenizer_json,
                                         const std::string& tokenizer_config);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  int64_t vocab_size() const;
  Encoding encode(std::string_view text, bool add_special, bool want_offsets = false) const;
  std::string decode(const int32_t* ids, int64_t count, bool skip_special) const;
  std::unique_ptr<TokenStream> stream(bool skip_special) const;
  // MOE_ERR_NOT_FOUND naming the token when absent.
  int32_t token_to_id(const std::string& token) const;

 private:
  Tokenizer(const moe_modality_ops& ops, moe_plugin_tokenizer* impl) : ops_(ops), impl_(impl) {}
  const moe_modality_ops& ops_;
  moe_plugin_tokenizer* impl_;
};

}  // namespace moe
