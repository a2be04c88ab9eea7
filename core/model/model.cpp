#include "model/model.h"

#include <algorithm>
#include <unordered_set>

#include "base/error.h"
#include "model/weight_io.h"
#include "text/tokenizer.h"

namespace moe {
namespace {
// Tokens per forward step: bounds activation memory; long inputs are run in chunks through the KV
// cache, which gives the same result as one step.
constexpr int64_t kStepTokens = 4096;
}  // namespace

Model::~Model() = default;

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

  KvCache cache(context_->backend(), config_, num_sequences, longest);
  // Steps of whole or partial sequences, in order; a sequence split across steps continues from its
  // cached keys.
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
  require(prompt_length >= 1, MOE_ERR_INVALID_ARGUMENT, "generate: the prompt is empty");
  require(params.max_new_tokens >= 0, MOE_ERR_INVALID_ARGUMENT, "generate: max_new_tokens must be >= 0");
  require(params.sampling.temperature >= 0 && params.sampling.top_k >= 0 && params.sampling.top_p > 0 &&
              params.sampling.top_p <= 1,
          MOE_ERR_INVALID_ARGUMENT, "generate: temperature must be >= 0, top_k >= 0 and top_p in (0, 1]");
  check_ids(prompt, prompt_length, "generate: prompt");
  const int64_t capacity = prompt_length + params.max_new_tokens;
  if (capacity > max_sequence_length_)
    fail(MOE_ERR_LIMIT, "generate: prompt (" + std::to_string(prompt_length) + " tokens) + max_new_tokens (" +
                            std::to_string(params.max_new_tokens) + ") exceeds the maximum sequence length " +
                            std::to_string(max_sequence_length_));
  std::vector<int32_t> produced;
  if (params.max_new_tokens == 0) return produced;

  KvCache cache(context_->backend(), config_, 1, capacity);
  Sampler sampler(params.sampling);
  std::unordered_set<int32_t> stop(params.stop_ids.begin(), params.stop_ids.end());
  std::unique_ptr<TokenStream> text;
  if (tokenizer_ && params.on_token) {
    text = tokenizer_->stream(false);
    // Decoders that treat the first token specially (Metaspace drops its leading space) must see the
    // generated text as a continuation: prime the stream with the prompt's last id, text discarded.
    text->push(prompt[prompt_length - 1]);
  }
  std::vector<float> logits(static_cast<size_t>(config_.vocab_size));

  // Prefill in chunks; only the prompt's last token needs logits.
  for (int64_t begin = 0; begin < prompt_length; begin += kStepTokens) {
    int64_t end = std::min(prompt_length, begin + kStepTokens);
    TokenBatch step;
    for (int64_t p = begin; p < end; ++p) {
      step.ids.push_back(prompt[p]);
      step.slot.push_back(0);
      step.position.push_back(static_cast<int32_t>(p));
    }
    if (end == prompt_length) step.logit_rows.push_back(end - begin - 1);
    Tensor out = transformer_->forward(step, cache);
    if (end == prompt_length) out.copy_to_host(logits.data(), logits.size() * sizeof(float));
  }
  for (int64_t position = prompt_length;; ++position) {
    int32_t token = sampler.next(logits.data(), config_.vocab_size);
    produced.push_back(token);
    const bool last = stop.count(token) || static_cast<int64_t>(produced.size()) == params.max_new_tokens;
    bool keep_going = true;
    if (params.on_token) {
      std::string piece;
      if (text) {
        piece = text->push(token);
        if (last) piece += text->finish();  // bytes held back for an unfinished UTF-8 sequence
      }
      keep_going = params.on_token(token, text ? piece.c_str() : nullptr);
    }
    if (!keep_going || last) break;
    TokenBatch step{{token}, {0}, {static_cast<int32_t>(position)}, {0}};
    transformer_->forward(step, cache).copy_to_host(logits.data(), logits.size() * sizeof(float));
  }
  return produced;
}

}  // namespace moe
