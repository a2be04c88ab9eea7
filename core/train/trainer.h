// Training and fine-tuning a loaded model in place: causal-LM loss (plus the routers' auxiliary
// losses), reverse-mode gradients through the backend op table, AdamW with decoupled weight decay,
// global-norm clipping, warmup + cosine schedule, gradient accumulation, freezing, LoRA, and
// checkpoints that resume bit-exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"
#include "train/autograd.h"

namespace moe {

enum class Schedule { kConstant, kCosine };
enum class Gating { kTopK, kGumbel };
enum class NanPolicy { kSkipStep, kStop };
// What the model is trained to do. Heads for the non-LM tasks are new weights the trainer owns
// (transformers' names: score.weight; qa_outputs.weight and .bias), read from the final hidden state.
enum class Task {
  kCausalLm,                // labels [batch, seq_len] (or the ids), shifted by one
  kSequenceClassification,  // labels [batch]: a class per sequence, read at its last token
  kSpanExtraction,          // labels [batch, 2]: start and end positions of the answer span
};

struct TrainerOptions {
  // AdamW and the schedule
  float lr = 1e-3f, weight_decay = 0.f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float clip_norm = 0.f;  // 0: no clipping
  int64_t warmup_steps = 0, total_steps = 0;  // total_steps: the cosine schedule's length
  Schedule schedule = Schedule::kConstant;
  float min_lr_ratio = 0.f;  // cosine decays to lr * min_lr_ratio
  int32_t grad_accumulation = 1;
  uint64_t seed = 0;
  // losses
  float label_smoothing = 0.f;
  int32_t ignore_index = -100;
  float aux_loss_coef = 0.f;          // Switch/Mixtral load balancing
  float z_loss_coef = 0.f;            // router z-loss
  float sequence_balance_coef = 0.f;  // DeepSeek-V3 sequence-wise balance
  float bias_update_speed = 0.f;      // auxiliary-loss-free balancing (gamma); needs router biases
  // gating during training
  Gating gating = Gating::kTopK;
  float gumbel_temperature = 1.f, gumbel_temperature_final = 1.f;  // annealed linearly over total_steps
  // > 0: each routed expert keeps at most ceil(capacity_factor * tokens * top_k / experts) assignments
  // of a micro-batch, in token order (Switch Transformer); 0: dropless. Applies to step() and
  // evaluate(); inference is always dropless.
  float capacity_factor = 0.f;
  NanPolicy nan_policy = NanPolicy::kSkipStep;
  Task task = Task::kCausalLm;
  int32_t num_labels = 0;  // classes of kSequenceClassification
  // fine-tuning: which weights train
  int64_t freeze_layers_below = 0;          // layers [0, n) frozen (and the embedding when n > 0)
  std::vector<int32_t> freeze_experts;      // routed experts frozen in every MoE layer
  std::vector<std::string> freeze_patterns; // weights whose transformers name matches one (std::regex) are frozen
  int32_t lora_rank = 0;                    // > 0: LoRA adapters instead of full training
  float lora_alpha = 16.f;
  // lora_experts: adapters on the MLP projections: dense layers, shared experts and each routed expert.
  bool lora_attention = true, lora_experts = false;
};

struct StepStats {
  double loss = 0;         // the language-model loss (mean per counted token)
  double aux_loss = 0;     // the auxiliary router losses, coefficients applied
  double grad_norm = 0;    // before clipping
  double lr = 0;
  int64_t tokens = 0;      // tokens with a label (for the heads: sequences)
  double accuracy = 0;     // classification and span heads: share of sequences predicted exactly
  int64_t step = 0;        // optimizer steps taken so far
  bool skipped = false;    // a non-finite loss or gradient: the step was not applied
  std::vector<std::vector<int64_t>> expert_load;  // per MoE layer, assignments per expert (before drops)
  double dropped_fraction = 0;  // share of the routed assignments dropped for expert capacity
};

class Trainer {
 public:
  // A trained tensor with its optimizer state: a model weight (sharing its memory, so updates land
  // in the model) or a LoRA adapter matrix owned by the trainer.
  struct Param {
    std::string name;  // transformers' parameter name (the fused name for stacked experts)
    Tensor value;
    std::shared_ptr<Tensor> grad;
    Tensor m, v;
    // Routed experts kept frozen inside a stacked [experts, ...] tensor: their slices are not updated.
    std::vector<bool> frozen_experts;
  };
  // A LoRA adapter on `weight` [out, in]: A [rank, in] and B [out, rank]; y += scale * B A x. On a
  // stack of routed experts [experts, out, in] one per expert: A [experts, rank, in], B [experts, out, rank].
  struct Lora {
    Tensor weight;
    Param a, b;
    float scale = 1.f;
  };

  Trainer(Model& model, const TrainerOptions& options);
  ~Trainer();

  // One micro-batch of `batch` sequences of `seq_len` tokens (ids) with labels (-100 ignored; null:
  // the ids). The optimizer steps every grad_accumulation micro-batches.
  StepStats step(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len);
  // The loss without gradients or updates.
  StepStats evaluate(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len);

  // A checkpoint: the model (config, weights, tokenizer) plus trainer_state.safetensors (optimizer
  // moments, LoRA adapters) and trainer_state.json (step, generator state), each written atomically.
  void save(const std::string& directory) const;
  // Restores what save() wrote into this trainer, whose model must have been loaded from the same
  // directory and whose options must match: training then continues exactly as it would have.
  void resume(const std::string& directory);
  // Adds each LoRA adapter's product into its weight and drops the adapters.
  void merge_lora();

  int64_t steps_taken() const { return step_; }
  // What trains (model weights, then LoRA A and B matrices, then a task head), with gradients as of
  // the last step.
  std::vector<const Param*> parameters() const;
  int64_t trainable_parameters() const;
  const TrainerOptions& options() const { return options_; }
  // Assignments per routed expert that training steps have made (the routers' choices, before any
  // capacity drop), summed since training began (save() and resume() carry it over): one row per
  // MoE layer, in layer order; moe_layers() gives each row's model layer.
  const std::vector<std::vector<int64_t>>& expert_load_total() const { return expert_load_total_; }
  std::vector<int32_t> moe_layers() const;
  int64_t model_experts() const { return model_.config().num_experts; }

 private:
  // The trained tensors the trainer owns (LoRA matrices, task head) rather than the model.
  std::vector<Param*> owned_parameters();
  double learning_rate() const;
  StepStats run(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len, bool train);
  // The task head's loss on the final hidden states; adds its gradients; fills loss and accuracy.
  void head_loss(TrainingPass& pass, const ad::Var& hidden, const int32_t* labels, int64_t batch, int64_t seq_len,
                 bool train, StepStats& stats);
  void apply_update(StepStats& stats);
  void update_router_biases(const std::vector<std::vector<int64_t>>& loads);

  Model& model_;
  TrainerOptions options_;
  std::vector<std::unique_ptr<Param>> params_;
  std::vector<std::unique_ptr<Lora>> lora_;
  std::unique_ptr<Param> head_weight_, head_bias_;  // task heads only
  std::vector<std::vector<int64_t>> expert_load_total_;
  int64_t step_ = 0;
  int32_t micro_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace moe
