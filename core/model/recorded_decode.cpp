#include "model/recorded_decode.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/log.h"
#include "tensor/ops.h"

namespace moe {

RecordedDecode::RecordedDecode(const Transformer& transformer, Backend& backend, KvCache& cache, int64_t vocab)
    : transformer_(transformer), backend_(backend), cache_(cache), vocab_(vocab) {
  reload_settings();
}

void RecordedDecode::reload_settings() {
  timing_.reload_settings();
  const char* env = std::getenv("MOE_RECORD_DECODE");
  required_ = env && std::strcmp(env, "require") == 0;
  enabled_ = !(env && std::strcmp(env, "0") == 0);
  if (failed_ || !backend_.can_record()) {
    require(!required_, MOE_ERR_UNSUPPORTED,
            "MOE_RECORD_DECODE=require, but backend '" + backend_.name() + "' cannot record steps" +
                (failed_ ? " (recording failed before)" : ""));
    enabled_ = false;
  }
}

RecordedDecode::Recording* RecordedDecode::recording_for(const TokenBatch& step) {
  const int64_t rows = static_cast<int64_t>(step.ids.size());
  auto found = recordings_.find(rows);
  if (found != recordings_.end()) return &found->second;

  // Inputs and outputs are made before recording, so they are not the recording's own blocks: the host
  // writes the one and reads the others around every replay. The argmax is recorded whenever the backend
  // has the op (a kernel over the logits the step already made), whether or not this call's rows are
  // greedy: a kept session serves later calls, which may be.
  Recording r;
  r.inputs = DeviceTokens::allocate(backend_, rows);
  r.logits = Tensor::empty(backend_, MOE_DTYPE_F32, {rows, vocab_});
  if (backend_.has_argmax_rows()) r.argmax = Tensor::empty(backend_, MOE_DTYPE_I32, {rows});
  std::string why;
  r.step = RecordedStep::record(
      backend_,
      [&] {
        Tensor logits = transformer_.forward_all_rows(r.inputs, cache_);
        ops::copy(logits, r.logits);
        if (r.argmax.defined()) ops::argmax_rows(r.logits, r.argmax);
      },
      &why);
  if (!r.step) {
    require(!required_, MOE_ERR_BACKEND, "MOE_RECORD_DECODE=require, but recording a decode step failed: " + why);
    // Not an error: the step runs op by op, as it would on a backend that cannot record.
    process_logger().write(MOE_LOG_WARN, "decode steps run op by op: recording one failed (" + why + ")");
    enabled_ = false;
    failed_ = true;
    return nullptr;
  }
  return &recordings_.emplace(rows, std::move(r)).first->second;
}

RecordedDecode::Recording* RecordedDecode::replay(const TokenBatch& step) {
  const int64_t rows = static_cast<int64_t>(step.ids.size());
  if (!enabled_ || rows < 1 || rows > kMaxRows) return nullptr;
  Recording* r = recording_for(step);
  if (!r) return nullptr;
  timing_.step_begins();
  r->inputs.fill(step);
  timing_.inputs_filled();
  r->step->replay();
  timing_.replay_issued();
  return r;
}

bool RecordedDecode::run(const TokenBatch& step, float* logits) {
  Recording* r = replay(step);
  if (!r) return false;
  r->logits.copy_to_host(logits, static_cast<size_t>(r->logits.numel()) * sizeof(float));
  timing_.outputs_arrived();
  return true;
}

bool RecordedDecode::run_greedy(const TokenBatch& step, int32_t* ids) {
  // Asked before replaying: a false return must mean that nothing ran.
  if (!backend_.has_argmax_rows()) return false;
  Recording* r = replay(step);
  if (!r) return false;
  r->argmax.copy_to_host(ids, static_cast<size_t>(r->argmax.numel()) * sizeof(int32_t));
  timing_.outputs_arrived();
  return true;
}

}  // namespace moe
