// Decode steps replayed from a recording where the backend can record (plugin ABI 1.2, a CUDA graph on
// the CUDA backend). A decode step at small batch costs more in launches and host work than in device
// work; recorded once, it runs as one launch per token. One recording per number of rows stepping (rows
// finish at different times), for one KvCache, made the first time that many rows step.
//
// Where the backend has argmax_rows (plugin ABI 1.3), the recording also takes each row's argmax into a
// fixed i32 output, so a step whose rows are all greedy reads back rows * 4 bytes instead of the logits.
//
// MOE_RECORD_DECODE=0 in the environment turns it off (every step then runs op by op); =require makes a
// backend that cannot record, or a recording that fails, an error instead (tests use it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "model/decode_timing.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tensor/recorded_step.h"

namespace moe {

class RecordedDecode {
 public:
  // Steps of more rows than this run op by op: their device work outweighs the launches.
  static constexpr int64_t kMaxRows = 16;

  RecordedDecode(const Transformer& transformer, Backend& backend, KvCache& cache, int64_t vocab);
  // Runs `step` (every row's logits wanted, in row order) from its recording and writes the logits
  // [rows, vocab] to `logits`. False when this step is not run from a recording (the backend cannot
  // record, it is turned off, the step has too many rows, or recording failed: logged once), so the
  // caller runs it op by op; nothing has run then.
  bool run(const TokenBatch& step, float* logits);
  // The same, for a step whose rows all sample greedily: writes each row's argmax (the next token) to
  // `ids` [rows] and copies no logits. False also when the backend has no argmax_rows; the caller then
  // takes the argmax another way.
  bool run_greedy(const TokenBatch& step, int32_t* ids);
  // Reads MOE_RECORD_DECODE and MOE_DECODE_TIMING again (a kept session serves a later call; recordings stay).
  void reload_settings();
  // Under MOE_DECODE_TIMING=1, writes where this call's replayed steps spent their time (decode_timing.h).
  void report_timing() { timing_.report(); }
  bool has_recordings() const { return !recordings_.empty(); }

 private:
  struct Recording {
    DeviceTokens inputs;
    Tensor logits;
    Tensor argmax;  // i32 [rows], each row's argmax of logits; not defined where the backend has no argmax_rows
    std::unique_ptr<RecordedStep> step;
  };
  // The step's recording, replayed with the step's inputs; nullptr when the step does not run from one.
  Recording* replay(const TokenBatch& step);
  Recording* recording_for(const TokenBatch& step);

  const Transformer& transformer_;
  Backend& backend_;
  KvCache& cache_;
  int64_t vocab_;
  bool enabled_;
  bool required_;
  bool failed_ = false;  // a recording failed: later calls on this session run op by op too
  DecodeTiming timing_;
  std::map<int64_t, Recording> recordings_;  // by rows; destroyed (their replays waited for) before the cache
};

}  // namespace moe
