// moesdk::Trainer: a moe_trainer that trains or fine-tunes a Model in place, for the SWIG bindings;
// TrainerOptions and TrainStats, whose scalar fields come from the one list every binding shares
// (bindings/common/moesdk_trainer_fields.h: a field appended to moe.h is one line there).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "moe/moe.h"
#include "moesdk_error.h"
#include "moesdk_model.h"
#include "moesdk_trainer_fields.h"

namespace moesdk {

// moe_trainer_options with the library's defaults (moe_trainer_options_init). Java: setLr(...),
// C#: Lr = ...; enumerations take Moe.SCHEDULE_*, Moe.GATING_*, Moe.NAN_*, Moe.TASK_*.
struct TrainerOptions {
#define MOESDK_OPTION_MEMBER(type, field, camel) type camel;
  MOESDK_TRAINER_OPTION_FIELDS(MOESDK_OPTION_MEMBER)
#undef MOESDK_OPTION_MEMBER

  TrainerOptions() {
    moe_trainer_options o;
    moe_trainer_options_init(&o);
#define MOESDK_OPTION_DEFAULT(type, field, camel) camel = static_cast<type>(o.field);
    MOESDK_TRAINER_OPTION_FIELDS(MOESDK_OPTION_DEFAULT)
#undef MOESDK_OPTION_DEFAULT
  }
  // Routed experts that stay fixed in every MoE layer.
  void setFreezeExperts(const int32_t* experts, int64_t expertCount) { freezeExperts_.assign(experts, experts + expertCount); }
  // Weights whose transformers name matches this regex stay fixed (one call per pattern).
  void addFreezePattern(const std::string& regex) { freezePatterns_.push_back(regex); }

#ifndef SWIG
  std::vector<int32_t> freezeExperts_;
  std::vector<std::string> freezePatterns_;

  // The C struct; its pattern pointers point into `patterns`, which must outlive it.
  moe_trainer_options toC(std::vector<const char*>& patterns) const {
    moe_trainer_options o;
    moe_trainer_options_init(&o);
#define MOESDK_OPTION_TO_C(type, field, camel) o.field = static_cast<decltype(o.field)>(camel);
    MOESDK_TRAINER_OPTION_FIELDS(MOESDK_OPTION_TO_C)
#undef MOESDK_OPTION_TO_C
    for (const auto& p : freezePatterns_) patterns.push_back(p.c_str());
    o.freeze_experts = freezeExperts_.empty() ? nullptr : freezeExperts_.data();
    o.num_freeze_experts = static_cast<int32_t>(freezeExperts_.size());
    o.freeze_patterns = patterns.empty() ? nullptr : patterns.data();
    o.num_freeze_patterns = static_cast<int32_t>(patterns.size());
    return o;
  }
#endif
};

// What one step reported (moe_train_stats); a copy the language owns.
struct TrainStats {
#ifdef SWIG
  %immutable;
#endif
#define MOESDK_STATS_MEMBER(type, field, camel) type camel;
  MOESDK_TRAIN_STATS_FIELDS(MOESDK_STATS_MEMBER)
#undef MOESDK_STATS_MEMBER
#ifdef SWIG
  %mutable;
#endif

#ifndef SWIG
  explicit TrainStats(const moe_train_stats& s) {
#define MOESDK_STATS_FROM_C(type, field, camel) camel = static_cast<type>(s.field);
    MOESDK_TRAIN_STATS_FIELDS(MOESDK_STATS_FROM_C)
#undef MOESDK_STATS_FROM_C
  }
#endif
};

// Sees each optimizer step of Trainer.train; a director class that Java and C# subclass. Return true
// to stop training (the call then fails with MOE_ERR_CANCELLED).
class ProgressHandler {
 public:
  virtual ~ProgressHandler() = default;
  virtual bool onStep(TrainStats stats) = 0;
};

class Trainer {
 public:
  explicit Trainer(Model& model) : Trainer(model, TrainerOptions()) {}
  Trainer(Model& model, const TrainerOptions& options) : model_(model.shared()), task_(options.task) {
    std::vector<const char*> patterns;
    moe_trainer_options o = options.toC(patterns);
    moe_trainer* raw = nullptr;
    check(moe_trainer_create(model_.get(), &o, &raw));
    trainer_.reset(raw);
  }

  // One micro-batch of `batch` sequences (ids holds batch * seqLen ids) with labels as the task says
  // (empty: none, which the causal LM reads as the ids).
  TrainStats stepInto(const int32_t* ids, int64_t idCount, const int32_t* labels, int64_t labelCount, int64_t batch,
                      int64_t seqLen) {
    std::lock_guard turn(one_call_);
    check_batch("step", idCount, labelCount, batch, seqLen);
    moe_train_stats s = empty_stats();
    check(moe_trainer_step(trainer_.get(), non_null(ids), labelCount ? labels : nullptr, batch, seqLen, &s));
    return TrainStats(s);
  }

  TrainStats evaluateInto(const int32_t* ids, int64_t idCount, const int32_t* labels, int64_t labelCount,
                          int64_t batch, int64_t seqLen) {
    std::lock_guard turn(one_call_);
    check_batch("evaluate", idCount, labelCount, batch, seqLen);
    moe_train_stats s = empty_stats();
    check(moe_trainer_evaluate(trainer_.get(), non_null(ids), labelCount ? labels : nullptr, batch, seqLen, &s));
    return TrainStats(s);
  }

  // moe_trainer_train over numSequences sequences of seqLen ids; handler (may be null) sees each step.
  void trainInto(const int32_t* ids, int64_t idCount, const int32_t* labels, int64_t labelCount, int64_t numSequences,
                 int64_t seqLen, int64_t batchSize, int64_t untilStep, bool shuffle, ProgressHandler* handler) {
    std::lock_guard turn(one_call_);
    check_batch("train", idCount, labelCount, numSequences, seqLen);
    check(moe_trainer_train(trainer_.get(), non_null(ids), labelCount ? labels : nullptr, numSequences, seqLen,
                            batchSize, untilStep, shuffle ? 1 : 0, handler ? &on_step : nullptr, handler));
  }

  void save(const std::string& directory) const {
    std::lock_guard turn(one_call_);
    check(moe_trainer_save(trainer_.get(), directory.c_str()));
  }
  void resume(const std::string& directory) {
    std::lock_guard turn(one_call_);
    check(moe_trainer_resume(trainer_.get(), directory.c_str()));
  }
  void mergeLora() {
    std::lock_guard turn(one_call_);
    check(moe_trainer_merge_lora(trainer_.get()));
  }
  // The shape of moe_trainer_expert_load's table: MoE layers (rows) and routed experts (columns).
  int64_t moeLayerCount() const { return expert_load_shape().first; }
  int64_t expertCount() const { return expert_load_shape().second; }
  // Tokens the routers assigned to each routed expert during training steps, summed since training
  // began: counts receives [moeLayerCount, expertCount] row-major, layers the model layer of each row.
  void expertLoadInto(int64_t* counts, int64_t countsLength, int32_t* layers, int64_t layersLength) const {
    std::lock_guard turn(one_call_);
    const auto [rows, experts] = expert_load_shape();
    require(layersLength >= rows, "expertLoad: layers holds " + std::to_string(layersLength) + " values, not " +
                                      std::to_string(rows));
    int64_t r = 0, e = 0;
    check(moe_trainer_expert_load(trainer_.get(), counts, countsLength, layers, &r, &e));
  }

  // Moe.TASK_*: what labels hold.
  int32_t task() const { return task_; }

 private:
  std::pair<int64_t, int64_t> expert_load_shape() const {
    std::lock_guard turn(one_call_);
    int64_t rows = 0, experts = 0;
    check(moe_trainer_expert_load(trainer_.get(), nullptr, 0, nullptr, &rows, &experts));
    return {rows, experts};
  }
  static moe_train_stats empty_stats() {
    moe_train_stats s{};
    s.struct_size = sizeof s;
    return s;
  }
  // An empty language array may arrive as NULL: the library then reports the empty batch, not a NULL.
  static const int32_t* non_null(const int32_t* p) {
    static const int32_t none = 0;
    return p ? p : &none;
  }
  // The library reads batch * seqLen ids and as many labels as the task says: check the arrays hold them.
  void check_batch(const char* what, int64_t idCount, int64_t labelCount, int64_t rows, int64_t seqLen) const {
    const std::string fn = std::string(what) + ": ";
    require(rows >= 0 && seqLen >= 0, fn + "the number of sequences and their length must not be negative");
    require(seqLen == 0 ? idCount == 0 : rows == idCount / seqLen && idCount % seqLen == 0,
            fn + "ids holds " + std::to_string(idCount) + " ids, not " + std::to_string(rows) + " sequences of " +
                std::to_string(seqLen));
    if (labelCount == 0) return;
    const int64_t per_row = task_ == MOE_TASK_SEQUENCE_CLASSIFICATION ? 1 : task_ == MOE_TASK_SPAN_EXTRACTION ? 2 : seqLen;
    require(labelCount == rows * per_row, fn + "labels holds " + std::to_string(labelCount) + " values, not " +
                                              std::to_string(rows * per_row) + " (" + std::to_string(per_row) +
                                              " per sequence for this task)");
  }
  // The handler runs in the target language; its wrapper catches what the language code throws (see
  // the languages' train methods), so nothing unwinds through the C library here.
  static int32_t on_step(const moe_train_stats* stats, void* user_data) {
    moe_train_stats copy = empty_stats();  // the library's struct may be shorter or longer than ours
    std::memcpy(&copy, stats, std::min<size_t>(stats->struct_size, sizeof copy));
    return static_cast<ProgressHandler*>(user_data)->onStep(TrainStats(copy)) ? 1 : 0;
  }

  struct Free {
    void operator()(moe_trainer* t) const { moe_trainer_free(t); }
  };
  std::shared_ptr<moe_model> model_;  // declared first: the trainer is freed before the model it trains
  std::unique_ptr<moe_trainer, Free> trainer_;
  int32_t task_;
  mutable std::recursive_mutex one_call_;  // a C trainer belongs to one thread at a time
};

}  // namespace moesdk
