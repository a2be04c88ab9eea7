// Generation for several prompts at once (Model::generate_batch; Model::generate is its one-row case).
// The prompts go through one forward (ragged, no padding), then each decode step feeds the last
// token of every unfinished row through one forward, so a step's products have as many rows as there
// are unfinished sequences: the weights are read once per step for all of them, not once per row.
// Where the backend can record, small decode steps run from a recording (RecordedDecode). A step whose
// rows all sample greedily takes their next tokens on the device (argmax_rows, plugin ABI 1.3) and copies
// rows * 4 bytes to the host instead of rows * vocab floats of logits.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>

#include "base/error.h"
#include "model/model.h"
#include "model/decode_session.h"
#include "tensor/ops.h"
#include "text/tokenizer.h"

namespace moe {
namespace {

// One sequence being generated.
struct Row {
  explicit Row(const SamplingParams& sampling) : sampler(sampling) {}
  Sampler sampler;
  std::vector<int32_t> produced;
  std::unique_ptr<TokenStream> text;  // set when the model has a tokenizer and there is a callback
  int32_t next_position = 0;          // the position of the next token fed back
};

// Whether greedy decode steps take their tokens from the device: where the backend has argmax_rows,
// unless MOE_DEVICE_ARGMAX=0 (then the logits are copied and the host takes the argmax, as on a backend
// without the op); =require makes a backend without the op an error (tests use it, so that a comparison
// of the two paths cannot pass by running the host's twice).
bool device_argmax_wanted(const Backend& backend) {
  const char* env = std::getenv("MOE_DEVICE_ARGMAX");
  if (env && std::strcmp(env, "0") == 0) return false;
  const bool required = env && std::strcmp(env, "require") == 0;
  require(!required || backend.has_argmax_rows(), MOE_ERR_UNSUPPORTED,
          "MOE_DEVICE_ARGMAX=require, but backend '" + backend.name() + "' has no argmax_rows (plugin ABI 1.3)");
  return backend.has_argmax_rows();
}

}  // namespace

std::vector<std::vector<int32_t>> Model::generate_batch(const int32_t* ids, const int64_t* lengths, int64_t rows,
                                                        const GenerateParams& params,
                                                        const RowTokenCallback& on_token) const {
  return generate_rows(ids, lengths, rows, params, on_token, "generate_batch", true);
}

std::vector<std::vector<int32_t>> Model::generate_rows(const int32_t* ids, const int64_t* lengths, int64_t rows,
                                                       const GenerateParams& params, const RowTokenCallback& on_token,
                                                       const char* what, bool name_rows) const {
  const std::string fn(what);
  auto prompt_name = [&](int64_t r) { return name_rows ? "row " + std::to_string(r) + "'s prompt" : std::string("the prompt"); };
  if (rows < 1) fail(MOE_ERR_INVALID_ARGUMENT, fn + ": there are no rows (num_rows is " + std::to_string(rows) + ")");
  require(params.max_new_tokens >= 0, MOE_ERR_INVALID_ARGUMENT, fn + ": max_new_tokens must be >= 0");
  const SamplingParams& sp = params.sampling;
  require(sp.temperature >= 0 && sp.top_k >= 0 && sp.top_p > 0 && sp.top_p <= 1, MOE_ERR_INVALID_ARGUMENT,
          fn + ": temperature must be >= 0, top_k >= 0 and top_p in (0, 1]");
  const int64_t max_new = params.max_new_tokens;
  // Lengths first (they say how many ids there are to read), then the ids. The cache gives every row
  // the room the longest one needs.
  int64_t total = 0, capacity = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (lengths[r] < 1)
      fail(MOE_ERR_INVALID_ARGUMENT, fn + ": " + prompt_name(r) + " is empty (length " + std::to_string(lengths[r]) +
                                         "; a prompt needs at least one id)");
    if (lengths[r] > max_sequence_length_ - max_new)
      fail(MOE_ERR_LIMIT, fn + ": " + prompt_name(r) + " (" + std::to_string(lengths[r]) + " tokens) + max_new_tokens (" +
                              std::to_string(max_new) + ") exceeds the maximum sequence length " +
                              std::to_string(max_sequence_length_));
    total += lengths[r];
    capacity = std::max(capacity, lengths[r] + max_new);
    // A batch is bounded like one forward call; moe_generate's single prompt never was (it runs
    // long prompts in steps), so it keeps its behaviour.
    if (name_rows && total > max_batch_tokens_)
      fail(MOE_ERR_LIMIT, fn + ": the prompts hold more than " + std::to_string(max_batch_tokens_) +
                              " tokens (max_batch_tokens)");
  }
  if (name_rows && rows * capacity > max_batch_tokens_)
    fail(MOE_ERR_LIMIT, fn + ": the KV cache would hold " + std::to_string(rows) + " rows x " + std::to_string(capacity) +
                            " positions (longest prompt + max_new_tokens), more than max_batch_tokens (" +
                            std::to_string(max_batch_tokens_) + ")");
  for (int64_t r = 0, offset = 0; r < rows; offset += lengths[r], ++r)
    check_ids(ids + offset, lengths[r], (fn + ": " + prompt_name(r)).c_str());

  std::vector<std::vector<int32_t>> produced(static_cast<size_t>(rows));
  if (max_new == 0) return produced;

  const int64_t vocab = config_.vocab_size;
  // The cache and recorded decode steps: the last call's when they fit, so steps replay at once.
  std::unique_ptr<DecodeSession> session = take_decode_session(rows, capacity);
  KvCache& cache = session->cache;
  RecordedDecode& recorded = session->recorded;
  std::unordered_set<int32_t> stop(params.stop_ids.begin(), params.stop_ids.end());
  std::vector<Row> state;
  state.reserve(static_cast<size_t>(rows));
  for (int64_t r = 0, offset = 0; r < rows; offset += lengths[r], ++r) {
    SamplingParams own = sp;
    own.seed = sp.seed + static_cast<uint64_t>(r);  // row r draws what a single generate with seed + r draws
    Row& row = state.emplace_back(own);
    row.next_position = static_cast<int32_t>(lengths[r]);
    if (tokenizer_ && on_token) {
      row.text = tokenizer_->stream(false);
      // Decoders that treat the first token specially (Metaspace drops its leading space) must see the
      // generated text as a continuation: prime the stream with the prompt's last id, text discarded.
      row.text->push(ids[offset + lengths[r] - 1]);
    }
  }

  const bool device_argmax = device_argmax_wanted(context_->backend());  // before any work: it may refuse

  // Prefill: every prompt's last-token logits, row r in logits row r. Its tokens are taken on the host.
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  run_sequences(ids, lengths, rows, /*last_only=*/true, cache, logits.data());
  std::vector<int32_t> active(static_cast<size_t>(rows));  // the rows whose logits `logits` holds, in order
  for (int64_t r = 0; r < rows; ++r) active[r] = static_cast<int32_t>(r);
  // After a step whose rows were all greedy (with device_argmax): each active row's next token, in
  // `active`'s order, instead of its logits.
  std::vector<int32_t> argmax;
  bool have_argmax = false;

  for (;;) {
    TokenBatch step;
    bool stop_all = false;
    for (size_t i = 0; i < active.size() && !stop_all; ++i) {
      const int32_t r = active[i];
      Row& row = state[r];
      const int32_t token = have_argmax ? argmax[i] : row.sampler.next(logits.data() + i * vocab, vocab);
      row.produced.push_back(token);
      const bool last = stop.count(token) || static_cast<int64_t>(row.produced.size()) == max_new;
      RowAction action = RowAction::kContinue;
      if (on_token) {
        std::string piece;
        if (row.text) {
          piece = row.text->push(token);
          if (last) piece += row.text->finish();  // bytes held back for an unfinished UTF-8 sequence
        }
        action = on_token(r, token, row.text ? piece.c_str() : nullptr);
      }
      if (action == RowAction::kStopAll) stop_all = true;
      if (action != RowAction::kContinue || last) continue;
      step.ids.push_back(token);
      step.slot.push_back(r);
      step.position.push_back(row.next_position++);
      step.logit_rows.push_back(static_cast<int64_t>(step.logit_rows.size()));
    }
    if (stop_all || step.ids.empty()) break;
    active = step.slot;
    have_argmax = device_argmax && std::all_of(active.begin(), active.end(),
                                               [&](int32_t r) { return state[r].sampler.greedy(); });
    if (have_argmax) {
      argmax.resize(active.size());
      if (!recorded.run_greedy(step, argmax.data()))
        ops::argmax_rows(transformer_->forward(step, cache))
            .copy_to_host(argmax.data(), argmax.size() * sizeof(int32_t));
    } else if (!recorded.run(step, logits.data())) {
      transformer_->forward(step, cache).copy_to_host(logits.data(), step.ids.size() * vocab * sizeof(float));
    }
  }
  for (int64_t r = 0; r < rows; ++r) produced[r] = std::move(state[r].produced);
  recorded.report_timing();
  keep_decode_session(std::move(session));  // only after a call that went well
  return produced;
}

}  // namespace moe
