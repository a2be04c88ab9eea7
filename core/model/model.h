// A loaded model: its config, its weights on the context's backend, the forward pass over them,
// and (when the checkpoint has one) its tokenizer. Read-only after loading: forward() and
// generate() may run on several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "context.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/sampler.h"
#include "model/transformer.h"

namespace moe {

class Tokenizer;
class DecodeSession;

struct LoadOptions {
  moe_dtype dtype = 0;                  // 0: the checkpoint's (bf16 stays bf16, other floats become f32)
  int64_t max_sequence_length = 0;      // 0: max_position_embeddings
  int64_t max_batch_tokens = 1 << 20;   // tokens one forward call may hold
};

struct GenerateParams {
  int32_t max_new_tokens = 64;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;
  // Called with each new token (and its text when the model has a tokenizer); returning false stops.
  std::function<bool(int32_t token, const char* text)> on_token;
};

// What a row's token callback in generate_batch asks for next.
enum class RowAction { kContinue, kStopRow, kStopAll };
// Called with each new token of a batch: its row, the token, and its text (when the model has a
// tokenizer, else nullptr).
using RowTokenCallback = std::function<RowAction(int64_t row, int32_t token, const char* text)>;

class Model {
 public:
  static std::unique_ptr<Model> load(std::shared_ptr<Context> context, const std::string& directory,
                                     const LoadOptions& options);
  // A new model from a config.json file with weights drawn as transformers initialises them
  // (N(0, initializer_range), RMSNorm weights 1) from `seed`; tokenizer_json may be empty.
  static std::unique_ptr<Model> create(std::shared_ptr<Context> context, const std::string& config_path,
                                       moe_dtype dtype, uint64_t seed, const std::string& tokenizer_json);
  ~Model();

  const ModelConfig& config() const { return config_; }
  moe_dtype dtype() const { return dtype_; }
  int64_t num_parameters() const { return num_parameters_; }
  int64_t active_parameters() const { return active_parameters_; }
  int64_t max_sequence_length() const { return max_sequence_length_; }
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  Context& context() const { return *context_; }

  // Logits for packed sequences (lengths[i] ids each), each computed as if alone. last_only: one row
  // per sequence (its last token), else one row per token. out holds rows * vocab floats.
  void forward(const int32_t* ids, const int64_t* lengths, int64_t num_sequences, bool last_only, float* out,
               int64_t out_capacity) const;

  // New tokens after prompt (the prompt is not included): generate_batch with one row.
  std::vector<int32_t> generate(const int32_t* prompt, int64_t prompt_length, const GenerateParams& params) const;

  // New tokens after each of `rows` packed prompts (lengths[r] ids each, as forward() takes them):
  // one forward over all prompts, then decode steps that run every unfinished row together, one
  // token each, through a KV cache with a slot per row. Row r samples from seed + r (so it draws
  // what generate() with that seed would). A row ends at a stop id, at max_new_tokens or when
  // on_token says so; params.on_token is not used (on_token may be empty). Tokens are reported step
  // by step, rows in increasing order within a step (see generate_batch.cpp).
  std::vector<std::vector<int32_t>> generate_batch(const int32_t* ids, const int64_t* lengths, int64_t rows,
                                                   const GenerateParams& params, const RowTokenCallback& on_token) const;

  // Writes config.json and the weights (transformers' names and layout) into directory.
  void save(const std::string& directory) const;

  // For the trainer, which updates the weights in place (no inference may run meanwhile). Drops the
  // kept decode session, whose recordings point at the weights.
  ModelWeights& mutable_weights();
  const ModelWeights& weights() const { return weights_; }
  const Transformer& transformer() const { return *transformer_; }

 private:
  Model();
  void check_ids(const int32_t* ids, int64_t count, const char* what) const;
  // Sequence s of the packed ids goes into cache slot s from position 0, in steps of a bounded number
  // of tokens (a sequence split across steps continues from its cached keys). Writes the logits of
  // every token (last_only false) or of each sequence's last token into out, in order.
  void run_sequences(const int32_t* ids, const int64_t* lengths, int64_t num_sequences, bool last_only,
                     KvCache& cache, float* out) const;
  // generate_batch's body; `what` names the caller in errors, name_rows adds "row r" to them.
  std::vector<std::vector<int32_t>> generate_rows(const int32_t* ids, const int64_t* lengths, int64_t rows,
                                                  const GenerateParams& params, const RowTokenCallback& on_token,
                                                  const char* what, bool name_rows) const;
  void finish_setup(const LoadOptions& options, int64_t sliding_window);
  // Stacks each Mixtral layer's q, k and v projections into one block (AttentionWeights::qkv).
  void fuse_qkv();

  std::shared_ptr<Context> context_;
  std::string config_json_;     // config.json as loaded, written back by save()
  std::string tokenizer_json_;  // the tokenizer.json the model came with ("" if none), copied by save()
  ModelConfig config_;
  moe_dtype dtype_ = MOE_DTYPE_F32;
  ModelWeights weights_;
  std::unique_ptr<Transformer> transformer_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int64_t num_parameters_ = 0, active_parameters_ = 0;
  int64_t max_sequence_length_ = 0, max_batch_tokens_ = 0;

  // The KV cache and recorded decode steps of the last generate call, kept for the next one (which then
  // replays instead of recording again) when it has as many rows and fits the cache (decode_session.h).
  // Last member: destroyed first, before the transformer and the weights its recordings use.
  std::unique_ptr<DecodeSession> take_decode_session(int64_t rows, int64_t capacity) const;
  void keep_decode_session(std::unique_ptr<DecodeSession> session) const;
  mutable std::mutex session_mutex_;
  mutable std::unique_ptr<DecodeSession> kept_session_;
};

}  // namespace moe
