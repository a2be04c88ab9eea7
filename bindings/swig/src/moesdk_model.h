// moesdk::Model: a loaded moe_model (forward, generate, save, describe), for the SWIG bindings.
// Array arguments come as (pointer, length) pairs that the language typemaps fill from the
// language's own arrays (moe.i); the public array methods of each language are written over these.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "moe/moe.h"
#include "moesdk_context.h"
#include "moesdk_error.h"
#include "moesdk_tokenizer.h"

namespace moesdk {

// moe_model_load_options with the library's defaults.
struct LoadOptions {
  int32_t dtype;               // Moe.LOAD_DTYPE_AUTO, _F32 or _BF16
  int64_t maxSequenceLength;   // 0 = the config's max_position_embeddings
  int64_t maxBatchTokens;      // cap on tokens in one forward call

  LoadOptions() {
    moe_model_load_options o;
    moe_model_load_options_init(&o);
    dtype = o.dtype;
    maxSequenceLength = o.max_sequence_length;
    maxBatchTokens = o.max_batch_tokens;
  }
};

// moe_model_create_options with the library's defaults, for Model.create.
struct CreateOptions {
  int32_t dtype;             // Moe.LOAD_DTYPE_F32 (default; full training needs it) or _BF16
  int64_t seed;              // weights ~ N(0, initializer_range) from this seed
  std::string tokenizerJson; // a tokenizer.json the model keeps and saves ("" for none)

  CreateOptions() {
    moe_model_create_options o;
    moe_model_create_options_init(&o);
    dtype = o.dtype;
    seed = static_cast<int64_t>(o.seed);
  }
};

// What moe_model_describe reports.
struct ModelInfo {
  const std::string architecture;  // config.json's model_type
  const int32_t dtype;             // Moe.DTYPE_F32 or Moe.DTYPE_BF16
  const int64_t vocabSize, hiddenSize, numLayers, numAttentionHeads, numKvHeads, numExperts, expertsPerToken,
      numSharedExperts, numMoeLayers, maxPositionEmbeddings, numParameters, activeParameters;
};

// moe_generate_options with the library's defaults; the callback is passed to generate().
struct GenerateOptions {
  int32_t maxNewTokens;
  float temperature;  // 0 = greedy
  int32_t topK;       // 0 = off
  float topP;         // 1 = off
  int64_t seed;       // the same seed gives the same tokens

  GenerateOptions() {
    moe_generate_options o;
    moe_generate_options_init(&o);
    maxNewTokens = o.max_new_tokens;
    temperature = o.temperature;
    topK = o.top_k;
    topP = o.top_p;
    seed = static_cast<int64_t>(o.seed);
  }
  // Generation ends after producing one of these ids.
  void setStopIds(const int32_t* stopIds, int64_t stopIdCount) { stopIds_.assign(stopIds, stopIds + stopIdCount); }

#ifndef SWIG
  std::vector<int32_t> stopIds_;
#endif
};

// Receives each generated token; a director class that Java and C# subclass. text is the newly
// completed UTF-8 text (hasText is false when the model has no tokenizer). Return true to stop.
class TokenHandler {
 public:
  virtual ~TokenHandler() = default;
  virtual bool onToken(int32_t tokenId, const std::string& text, bool hasText) = 0;
};

// Receives each token of each row of Model.generateBatch; a director class that Java and C# subclass.
// Returns Moe.GENERATE_CONTINUE, _STOP_ROW or _STOP_ALL.
class BatchTokenHandler {
 public:
  virtual ~BatchTokenHandler() = default;
  virtual int32_t onToken(int64_t row, int32_t tokenId, const std::string& text, bool hasText) = 0;
};

class Model {
 public:
  Model(Context& context, const std::string& directory) : Model(context, directory, LoadOptions()) {}
  Model(Context& context, const std::string& directory, const LoadOptions& options) {
    moe_model_load_options o;
    moe_model_load_options_init(&o);
    o.dtype = options.dtype;
    o.max_sequence_length = options.maxSequenceLength;
    o.max_batch_tokens = options.maxBatchTokens;
    moe_model* raw = nullptr;
    check(moe_model_load(context.get(), directory.c_str(), &o, &raw));
    model_.reset(raw, moe_model_free);
    vocab_size_ = describe().vocabSize;
  }

  // A new model from a Hugging Face config.json (the file) with random weights drawn from the seed.
  static Model* create(Context& context, const std::string& configPath, const CreateOptions& options) {
    moe_model_create_options o;
    moe_model_create_options_init(&o);
    o.dtype = options.dtype;
    o.seed = static_cast<uint64_t>(options.seed);
    o.tokenizer_json = options.tokenizerJson.empty() ? nullptr : options.tokenizerJson.c_str();
    moe_model* raw = nullptr;
    check(moe_model_create(context.get(), configPath.c_str(), &o, &raw));
    return new Model(raw);
  }

  ModelInfo describe() const {
    moe_model_info i{};
    i.struct_size = sizeof i;
    check(moe_model_describe(model_.get(), &i));
    return {i.architecture,       i.dtype,          i.vocab_size,         i.hidden_size,
            i.num_layers,         i.num_attention_heads, i.num_kv_heads, i.num_experts,
            i.experts_per_token,  i.num_shared_experts, i.num_moe_layers, i.max_position_embeddings,
            i.num_parameters,     i.active_parameters};
  }

  void save(const std::string& directory) const { check(moe_model_save(model_.get(), directory.c_str())); }

  int64_t vocabSize() const { return vocab_size_; }

  // moe_forward over sequences packed in ids (lengths[i] ids each). logits receives
  // [tokens or sequences, vocab] floats.
  void forwardInto(const int32_t* ids, int64_t idCount, const int64_t* lengths, int64_t lengthCount, bool lastOnly,
                   float* logits, int64_t logitsLength) const {
    check_lengths("forward", idCount, lengths, lengthCount);
    moe_forward_options o;
    moe_forward_options_init(&o);
    o.logits = lastOnly ? MOE_LOGITS_LAST : MOE_LOGITS_ALL;
    check(moe_forward(model_.get(), ids, lengths, lengthCount, &o, logits, logitsLength));
  }

  // moe_generate: writes the new ids into out (at least maxNewTokens long) and returns their count.
  // handler may be null.
  int64_t generateInto(const int32_t* prompt, int64_t promptLength, const GenerateOptions& options,
                       TokenHandler* handler, int32_t* out, int64_t outLength) const {
    moe_generate_options o = to_c(options);
    if (handler) {
      o.callback = &on_token;
      o.user_data = handler;
    }
    int64_t count = 0;
    check(moe_generate(model_.get(), prompt, promptLength, &o, out, outLength, &count));
    return count;
  }

  // moe_generate_batch over prompts packed in ids (lengths[i] ids each): row r's new ids go to
  // out[r * maxNewTokens ...] and their count to counts[r]. handler may be null.
  void generateBatchInto(const int32_t* ids, int64_t idCount, const int64_t* lengths, int64_t lengthCount,
                         const GenerateOptions& options, BatchTokenHandler* handler, int32_t* out, int64_t outLength,
                         int64_t* counts, int64_t countsLength) const {
    check_lengths("generateBatch", idCount, lengths, lengthCount);
    require(options.maxNewTokens >= 0, "generateBatch: maxNewTokens must not be negative");
    require(countsLength >= lengthCount && outLength / (options.maxNewTokens > 0 ? options.maxNewTokens : 1) >= lengthCount,
            "generateBatch: the output arrays are too small");
    moe_generate_options o = to_c(options);
    check(moe_generate_batch(model_.get(), ids, lengths, lengthCount, &o, handler ? &on_batch_token : nullptr, handler,
                             out, options.maxNewTokens, counts));
  }

  // The tokenizer the checkpoint came with (MOE_ERR_NOT_FOUND if none). It keeps the model's
  // memory alive until both are closed.
  Tokenizer* tokenizer() const {
    const moe_tokenizer* tok = nullptr;
    check(moe_model_tokenizer(model_.get(), &tok));
    return new Tokenizer(tok, model_);
  }

#ifndef SWIG
  // Shares the model's memory: a trainer keeps it until both are closed.
  std::shared_ptr<moe_model> shared() const { return model_; }
#endif

 private:
  static void check_lengths(const char* what, int64_t idCount, const int64_t* lengths, int64_t lengthCount) {
    int64_t total = 0;
    for (int64_t i = 0; i < lengthCount; ++i) {
      require(lengths[i] >= 0, std::string(what) + ": lengths must not be negative");
      total += lengths[i];
    }
    require(total == idCount, std::string(what) + ": lengths add up to " + std::to_string(total) +
                                  " tokens but ids holds " + std::to_string(idCount));
  }
  static moe_generate_options to_c(const GenerateOptions& options) {
    moe_generate_options o;
    moe_generate_options_init(&o);
    o.max_new_tokens = options.maxNewTokens;
    o.temperature = options.temperature;
    o.top_k = options.topK;
    o.top_p = options.topP;
    o.seed = static_cast<uint64_t>(options.seed);
    o.stop_ids = options.stopIds_.empty() ? nullptr : options.stopIds_.data();
    o.num_stop_ids = static_cast<int32_t>(options.stopIds_.size());
    return o;
  }
  static int32_t on_batch_token(int64_t row, int32_t token, const char* text, void* user_data) {
    auto* handler = static_cast<BatchTokenHandler*>(user_data);
    return handler->onToken(row, token, text ? std::string(text) : std::string(), text != nullptr);
  }
  explicit Model(moe_model* raw) : model_(raw, moe_model_free), vocab_size_(describe().vocabSize) {}

  // The handler runs in the target language; its wrapper catches what the language code throws
  // (see the languages' generate methods), so nothing unwinds through the C library here.
  static int32_t on_token(int32_t token, const char* text, void* user_data) {
    auto* handler = static_cast<TokenHandler*>(user_data);
    return handler->onToken(token, text ? std::string(text) : std::string(), text != nullptr) ? 1 : 0;
  }

  std::shared_ptr<moe_model> model_;
  int64_t vocab_size_ = 0;
};

}  // namespace moesdk
