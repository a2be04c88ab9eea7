// A Hugging Face tokenizer.json (plus, optionally, its tokenizer_config.json), loaded once and then
// used read-only: encode and decode may run on many threads at once.
//
// Encoding: added tokens are found in the raw text; the stretches between them are normalised,
// searched for normalised added tokens, pre-tokenized into words, and each word is encoded by the
// BPE model; the post-processor then adds BOS/EOS when asked. Offsets are byte ranges of the input;
// a token holding only part of a character's bytes covers that whole character (as in Hugging Face).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "added_tokens.h"
#include "bpe_model.h"
#include "decoder.h"
#include "normalizer.h"
#include "post_processor.h"
#include "pre_tokenizer.h"
#include "source_text.h"
#include "tokenizer_config.h"

namespace moe::text {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<Span> offsets;  // one per id when asked for
};

class Tokenizer {
 public:
  // tokenizer.json text (name is what messages call it) and, optionally, its tokenizer_config.json.
  Tokenizer(std::string_view json_text, const std::string& name, const std::optional<TokenizerConfig>& config = {},
            const std::string& config_name = {});

  // text must be valid UTF-8 (MOE_ERR_INVALID_ARGUMENT naming the offset of the first bad byte).
  void encode(std::string_view text, bool add_special, bool want_offsets, Encoding& out) const;

  // Decoded bytes before ill-formed UTF-8 is replaced (streaming needs them raw). An id that is
  // not in the tokenizer is MOE_ERR_INVALID_ARGUMENT naming it.
  std::string decode_bytes(const int32_t* ids, size_t count, bool skip_special) const;
  std::string decode(const int32_t* ids, size_t count, bool skip_special) const;

  // The id of a token's text (added tokens first), or -1.
  int32_t token_to_id(std::string_view token) const;
  bool is_known(int32_t id) const;
  bool is_special(int32_t id) const;
  // Largest id + 1.
  int64_t vocab_size() const { return static_cast<int64_t>(max_id_) + 1; }
  // "bos", "eos", "pad" (from tokenizer_config.json) or "unk" (also the model's unk_token); -1 if none.
  int32_t special_token_id(std::string_view role) const;

 private:
  class ModelSink;
  void apply_config(const TokenizerConfig& config, const std::string& config_name);

  void encode_section(std::string_view input, size_t begin, size_t end, class EncodeState& state) const;
  void post_process(size_t text_length, bool add_special, bool track, Encoding& out) const;
  const std::string* token_text(int32_t id) const;

  std::string name_;  // the tokenizer.json path, for messages
  NormalizerChain normalizer_;
  PreTokenizerChain pre_tokenizer_;
  std::optional<BpeModel> model_;
  AddedVocabulary added_;
  PostProcessor post_;
  DecoderChain decoder_;
  TokenizerConfig config_;
  std::string model_unk_token_;
  int32_t max_id_ = -1;
};

// Loads tokenizer.json from json_path and, when config_path is not empty, tokenizer_config.json.
Tokenizer load_tokenizer(const std::string& json_path, const std::string& config_path);

}  // namespace moe::text
