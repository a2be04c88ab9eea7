#include "model/model.h"

#include <algorithm>

#include "base/error.h"
#include "model/decode_session.h"
#include "model/weight_io.h"
#include "text/tokenizer.h"

namespace moe {
namespace {
// Tokens per forward step: bounds activation memory; long inputs are run in chunks through the KV
// cache, which gives the same result as one step.
constexpr int64_t kStepTokens = 4096;
}  // namespace

Model::Model() = default;
Model::~Model() = default;

ModelWeights& Model::mutable_weights() {
  std::lock_guard lock(session_mutex_);
  kept_session_.reset();
  // The trainer may replace weight tensors; the stacked block would then be stale.
  for (LayerWeights& layer : weights_.layers) layer.attn.qkv = Tensor();
  return weights_;
}

std::unique_ptr<DecodeSession> Model::take_decode_session(int64_t rows, int64_t capacity) const {
  {
    std::lock_guard lock(session_mutex_);
    if (kept_session_ && kept_session_->fits(rows, capacity, config_)) {
      kept_session_->recorded.reload_settings();
      return std::move(kept_session_);
    }
  }
  return std::make_unique<DecodeSession>(*transformer_, context_->backend(), config_, rows, capacity);
}

void Model::keep_decode_session(std::unique_ptr<DecodeSession> session) const {
  // A session without recordings (no decode step ran, or the backend cannot record) saves the next call
  // nothing, and must not push out one that has them (a call of one new token between longer ones).
  if (!session->recorded.has_recordings()) return;
  // Nor is a cache worth pinning between calls once it is large (long contexts of a big model).
  constexpr size_t kMaxKeptCacheBytes = size_t(1) << 30;
  if (session->cache.nbytes() > kMaxKeptCacheBytes) return;
  std::unique_ptr<DecodeSession> replaced;  // destroyed outside the lock
  std::lock_guard lock(session_mutex_);
  replaced = std::move(kept_session_);
  kept_session_ = std::move(session);
}

void Model::check_ids(const int32_t* ids, int64_t count, const char* what) const {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      fail(MOE_ERR_INVALID_ARGUMENT, std::string(what) + ": token id " + std::to_string(ids[i]) + " at index " +
                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                         std::to_string(config_.vocab_size) + ")");
}

void Model::forward(const int32_t* ids, const int64_t* lengths, int64_t num_sequences, bool last_only, float* out,
                    int64_t out_capacity) const {
  require(num_sequences >= 1, MOE_ERR_INVALID_ARGUMENT, "forward: the batch is empty (num_sequences is 0)");
  int64_t total = 0, longest = 0;
  for (int64_t s = 0; s < num_sequences; ++s) {
    if (lengths[s] <= 0)
      fail(MOE_ERR_INVALID_ARGUMENT, "forward: sequence " + std::to_string(s) + " has length " +
                                         std::to_string(lengths[s]) + " (must be >= 1)");
    if (lengths[s] > max_sequence_length_)
      fail(MOE_ERR_LIMIT, "forward: sequence " + std::to_string(s) + " has " + std::to_string(lengths[s]) +
                              " tokens, more than the maximum sequence length " + std::to_string(max_sequence_length_));
    total += lengths[s];
    longest = std::max(longest, lengths[s]);
    if (total > max_batch_tokens_)
      fail(MOE_ERR_LIMIT, "forward: the batch holds more than " + std::to_string(max_batch_tokens_) +
                              " tokens (max_batch_tokens)");
  }
  check_ids(ids, total, "forward");
  const int64_t vocab = config_.vocab_size;
  const int64_t rows = last_only ? num_sequences : total;
  if (out_capacity < rows * vocab)
    fail(MOE_ERR_INVALID_ARGUMENT, "forward: logits_capacity is " + std::to_string(out_capacity) + " floats, " +
                                       std::to_string(rows * vocab) + " are needed (" + std::to_string(rows) +
                                       " rows x vocab " + std::to_string(vocab) + ")");

  KvCache cache(context_->backend(), config_, num_sequences, longest, inference_kv_layout(config_));
  run_sequences(ids, lengths, num_sequences, last_only, cache, out);
}

void Model::run_sequences(const int32_t* ids, const int64_t* lengths, int64_t num_sequences, bool last_only,
                          KvCache& cache, float* out) const {
  const int64_t vocab = config_.vocab_size;
  TokenBatch step;
  int64_t rows_done = 0, offset = 0;
  auto flush = [&] {
    if (step.ids.empty()) return;
    Tensor logits = transformer_->forward(step, cache);
    logits.copy_to_host(out + rows_done * vocab, logits.nbytes());
    rows_done += static_cast<int64_t>(step.logit_rows.size());
    step = TokenBatch{};
  };
  for (int64_t s = 0; s < num_sequences; ++s) {
    for (int64_t p = 0; p < lengths[s]; ++p) {
      step.ids.push_back(ids[offset + p]);
      step.slot.push_back(static_cast<int32_t>(s));
      step.position.push_back(static_cast<int32_t>(p));
      if (!last_only || p == lengths[s] - 1) step.logit_rows.push_back(static_cast<int64_t>(step.ids.size()) - 1);
      if (static_cast<int64_t>(step.ids.size()) == kStepTokens) flush();
    }
    offset += lengths[s];
  }
  flush();
}

std::vector<int32_t> Model::generate(const int32_t* prompt, int64_t prompt_length, const GenerateParams& params) const {
  RowTokenCallback on_row_token;
  if (params.on_token)
    on_row_token = [&](int64_t, int32_t token, const char* text) {
      return params.on_token(token, text) ? RowAction::kContinue : RowAction::kStopRow;
    };
  return generate_rows(prompt, &prompt_length, 1, params, on_row_token, "generate", false).front();
}

}  // namespace moe
