// moe_trainer_*: the C ABI over the core trainer.
#include <algorithm>
#include <cstring>
#include <vector>

#include "guard.h"
#include "handles.h"
#include "model/model.h"
#include "train/data_order.h"
#include "train/trainer.h"

using moe::api::guarded;
using moe::api::require_arg;

struct moe_trainer {
  std::unique_ptr<moe::Trainer> impl;
};

namespace {

void fill_stats(const moe::StepStats& s, moe_train_stats* out) {
  if (!out) return;
  require_arg(out->struct_size >= offsetof(moe_train_stats, loss) + sizeof(double),
              "stats->struct_size is too small (set it to sizeof(moe_train_stats))");
  moe_train_stats r{};
  r.struct_size = out->struct_size;
  r.loss = s.loss;
  r.aux_loss = s.aux_loss;
  r.grad_norm = s.grad_norm;
  r.lr = s.lr;
  r.tokens = s.tokens;
  r.step = s.step;
  r.skipped = s.skipped ? 1 : 0;
  double balance = 0;
  for (const auto& load : s.expert_load) {
    double mean = 0, mx = 0;
    for (int64_t x : load) {
      mean += static_cast<double>(x);
      mx = std::max(mx, static_cast<double>(x));
    }
    mean /= static_cast<double>(load.size());
    balance += mean > 0 ? mx / mean : 0;
  }
  r.expert_balance = s.expert_load.empty() ? 0 : balance / static_cast<double>(s.expert_load.size());
  r.accuracy = s.accuracy;
  r.dropped_fraction = s.dropped_fraction;
  std::memcpy(out, &r, std::min<size_t>(out->struct_size, sizeof(r)));
}

void check_batch(const int32_t* ids, int64_t batch, int64_t seq_len, const char* fn) {
  require_arg(ids != nullptr, (std::string(fn) + ": ids is NULL").c_str());
  if (batch < 1 || seq_len < 2)
    moe::fail(MOE_ERR_INVALID_ARGUMENT, std::string(fn) + ": the batch is empty (" + std::to_string(batch) + " x " +
                                            std::to_string(seq_len) + "; need at least 1 sequence of 2 tokens)");
}

}  // namespace

extern "C" {

void moe_trainer_options_init_sized(moe_trainer_options* options, uint32_t struct_size) {
  moe::TrainerOptions core;
  moe_trainer_options d{};
  d.lr = core.lr;
  d.weight_decay = core.weight_decay;
  d.beta1 = core.beta1;
  d.beta2 = core.beta2;
  d.eps = core.eps;
  d.grad_accumulation = 1;
  d.ignore_index = -100;
  d.gumbel_temperature = d.gumbel_temperature_final = 1.f;
  d.lora_alpha = 16.f;
  d.lora_attention = 1;
  moe::api::fill_options(options, struct_size, d);
}

moe_status moe_trainer_create(moe_model* model, const moe_trainer_options* options, moe_trainer** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_trainer_create: out is NULL");
    *out = nullptr;
    require_arg(model != nullptr, "moe_trainer_create: model is NULL");
    moe_trainer_options o{};
    moe_trainer_options_init(&o);
    moe::api::read_options(options, o, "moe_trainer_create");
    require_arg(o.schedule == MOE_SCHEDULE_CONSTANT || o.schedule == MOE_SCHEDULE_COSINE,
                "moe_trainer_create: schedule must be MOE_SCHEDULE_CONSTANT or MOE_SCHEDULE_COSINE");
    require_arg(o.gating == MOE_GATING_TOPK || o.gating == MOE_GATING_GUMBEL,
                "moe_trainer_create: gating must be MOE_GATING_TOPK or MOE_GATING_GUMBEL");
    require_arg(o.nan_policy == MOE_NAN_SKIP_STEP || o.nan_policy == MOE_NAN_STOP,
                "moe_trainer_create: nan_policy must be MOE_NAN_SKIP_STEP or MOE_NAN_STOP");
    require_arg((o.num_freeze_experts == 0 || o.freeze_experts) && o.num_freeze_experts >= 0,
                "moe_trainer_create: freeze_experts is NULL but num_freeze_experts > 0");
    require_arg((o.num_freeze_patterns == 0 || o.freeze_patterns) && o.num_freeze_patterns >= 0,
                "moe_trainer_create: freeze_patterns is NULL but num_freeze_patterns > 0");
    moe::TrainerOptions t;
    t.lr = o.lr;
    t.weight_decay = o.weight_decay;
    t.beta1 = o.beta1;
    t.beta2 = o.beta2;
    t.eps = o.eps;
    t.clip_norm = o.clip_norm;
    t.warmup_steps = o.warmup_steps;
    t.total_steps = o.total_steps;
    t.schedule = o.schedule == MOE_SCHEDULE_COSINE ? moe::Schedule::kCosine : moe::Schedule::kConstant;
    t.min_lr_ratio = o.min_lr_ratio;
    t.grad_accumulation = o.grad_accumulation;
    t.seed = o.seed;
    t.label_smoothing = o.label_smoothing;
    t.ignore_index = o.ignore_index;
    t.aux_loss_coef = o.aux_loss_coef;
    t.z_loss_coef = o.z_loss_coef;
    t.sequence_balance_coef = o.sequence_balance_coef;
    t.bias_update_speed = o.bias_update_speed;
    t.gating = o.gating == MOE_GATING_GUMBEL ? moe::Gating::kGumbel : moe::Gating::kTopK;
    t.gumbel_temperature = o.gumbel_temperature;
    t.gumbel_temperature_final = o.gumbel_temperature_final;
    t.nan_policy = o.nan_policy == MOE_NAN_STOP ? moe::NanPolicy::kStop : moe::NanPolicy::kSkipStep;
    t.freeze_layers_below = o.freeze_layers_below;
    t.freeze_experts.assign(o.freeze_experts, o.freeze_experts + o.num_freeze_experts);
    for (int32_t i = 0; i < o.num_freeze_patterns; ++i) {
      require_arg(o.freeze_patterns[i] != nullptr, "moe_trainer_create: freeze_patterns has a NULL entry");
      t.freeze_patterns.emplace_back(o.freeze_patterns[i]);
    }
    t.lora_rank = o.lora_rank;
    t.lora_alpha = o.lora_alpha;
    t.lora_attention = o.lora_attention != 0;
    t.lora_experts = o.lora_experts != 0;
    require_arg(o.task == MOE_TASK_CAUSAL_LM || o.task == MOE_TASK_SEQUENCE_CLASSIFICATION || o.task == MOE_TASK_SPAN_EXTRACTION,
                "moe_trainer_create: task must be one of MOE_TASK_*");
    t.task = o.task == MOE_TASK_SEQUENCE_CLASSIFICATION ? moe::Task::kSequenceClassification
             : o.task == MOE_TASK_SPAN_EXTRACTION      ? moe::Task::kSpanExtraction
                                                       : moe::Task::kCausalLm;
    t.num_labels = o.num_labels;
    t.capacity_factor = o.capacity_factor;
    auto trainer = std::make_unique<moe_trainer>();
    trainer->impl = std::make_unique<moe::Trainer>(*model->impl, t);
    *out = trainer.release();
  });
}

void moe_trainer_free(moe_trainer* trainer) { delete trainer; }

moe_status moe_trainer_step(moe_trainer* trainer, const int32_t* ids, const int32_t* labels, int64_t batch,
                            int64_t seq_len, moe_train_stats* stats) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_step: trainer is NULL");
    check_batch(ids, batch, seq_len, "moe_trainer_step");
    fill_stats(trainer->impl->step(ids, labels, batch, seq_len), stats);
  });
}

moe_status moe_trainer_evaluate(moe_trainer* trainer, const int32_t* ids, const int32_t* labels, int64_t batch,
                                int64_t seq_len, moe_train_stats* stats) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_evaluate: trainer is NULL");
    check_batch(ids, batch, seq_len, "moe_trainer_evaluate");
    fill_stats(trainer->impl->evaluate(ids, labels, batch, seq_len), stats);
  });
}

moe_status moe_trainer_train(moe_trainer* trainer, const int32_t* ids, const int32_t* labels, int64_t num_sequences,
                             int64_t seq_len, int64_t batch_size, int64_t until_step, int32_t shuffle,
                             moe_train_progress progress, void* user_data) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_train: trainer is NULL");
    check_batch(ids, num_sequences, seq_len, "moe_trainer_train");
    require_arg(batch_size >= 1, "moe_trainer_train: batch_size must be >= 1");
    moe::Trainer& t = *trainer->impl;
    const int64_t accumulation = t.options().grad_accumulation;
    moe::DataOrder order(num_sequences, batch_size, shuffle != 0, t.options().seed);
    const moe::Task task = t.options().task;
    const int64_t label_width = task == moe::Task::kCausalLm ? seq_len : task == moe::Task::kSpanExtraction ? 2 : 1;
    std::vector<int32_t> batch_ids(static_cast<size_t>(batch_size * seq_len)), batch_labels;
    if (labels) batch_labels.resize(static_cast<size_t>(batch_size * label_width));
    while (t.steps_taken() < until_step) {
      moe::StepStats s;
      for (int64_t micro = 0; micro < accumulation; ++micro) {
        auto rows = order.batch(t.steps_taken() * accumulation + micro);
        for (size_t r = 0; r < rows.size(); ++r) {
          std::memcpy(&batch_ids[r * seq_len], ids + rows[r] * seq_len, seq_len * sizeof(int32_t));
          if (labels)
            std::memcpy(&batch_labels[r * label_width], labels + rows[r] * label_width, label_width * sizeof(int32_t));
        }
        s = t.step(batch_ids.data(), labels ? batch_labels.data() : nullptr, batch_size, seq_len);
        if (s.skipped) break;
      }
      if (progress) {
        moe_train_stats out{};
        out.struct_size = sizeof(out);
        fill_stats(s, &out);
        if (progress(&out, user_data) != 0)
          moe::fail(MOE_ERR_CANCELLED, "moe_trainer_train: cancelled by the progress callback at step " +
                                           std::to_string(t.steps_taken()));
      }
    }
  });
}

moe_status moe_trainer_save(const moe_trainer* trainer, const char* directory) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_save: trainer is NULL");
    require_arg(directory != nullptr && *directory, "moe_trainer_save: directory is NULL or empty");
    trainer->impl->save(directory);
  });
}

moe_status moe_trainer_resume(moe_trainer* trainer, const char* directory) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_resume: trainer is NULL");
    require_arg(directory != nullptr && *directory, "moe_trainer_resume: directory is NULL or empty");
    trainer->impl->resume(directory);
  });
}

moe_status moe_trainer_merge_lora(moe_trainer* trainer) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_merge_lora: trainer is NULL");
    trainer->impl->merge_lora();
  });
}

moe_status moe_trainer_expert_load(const moe_trainer* trainer, int64_t* counts, int64_t capacity, int32_t* layers,
                                   int64_t* num_layers, int64_t* num_experts) {
  return guarded([&] {
    require_arg(trainer != nullptr, "moe_trainer_expert_load: trainer is NULL");
    const moe::Trainer& t = *trainer->impl;
    const std::vector<int32_t> moe_layers = t.moe_layers();
    const auto& load = t.expert_load_total();
    const int64_t rows = static_cast<int64_t>(moe_layers.size()), experts = moe_layers.empty() ? 0 : t.model_experts();
    if (num_layers) *num_layers = rows;
    if (num_experts) *num_experts = experts;
    if (counts) {
      if (capacity < rows * experts)
        moe::fail(MOE_ERR_INVALID_ARGUMENT, "moe_trainer_expert_load: counts holds " + std::to_string(capacity) +
                                                " values, the load has " + std::to_string(rows * experts) + " (" +
                                                std::to_string(rows) + " MoE layers x " + std::to_string(experts) + " experts)");
      // Before the first training step nothing has been routed yet: zeros.
      for (int64_t l = 0; l < rows; ++l)
        for (int64_t e = 0; e < experts; ++e)
          counts[l * experts + e] = load.empty() ? 0 : load[static_cast<size_t>(l)][static_cast<size_t>(e)];
    }
    if (layers)
      for (int64_t l = 0; l < rows; ++l) layers[l] = moe_layers[static_cast<size_t>(l)];
  });
}

}  // extern "C"
