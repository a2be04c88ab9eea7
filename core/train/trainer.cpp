#include "train/trainer.h"

#include <cmath>
#include <regex>

#include "base/error.h"
#include "model/weight_table.h"
#include "tensor/backend.h"
#include "tensor/ops.h"
#include "train/router_losses.h"

namespace moe {

namespace {

bool matches_any(const WeightEntry& e, const std::vector<std::regex>& patterns) {
  for (const auto& re : patterns) {
    if (!e.fused_name.empty() && std::regex_search(e.fused_name, re)) return true;
    for (const auto& p : e.parts)
      if (std::regex_search(p.name, re)) return true;
  }
  return false;
}

// The layer a transformers name belongs to, or -1.
int64_t layer_of(const std::string& name) {
  static const std::regex re(R"(model\.layers\.(\d+)\.)");
  std::smatch m;
  return std::regex_search(name, m, re) ? std::stoll(m[1].str()) : -1;
}

bool is_attention_projection(const std::string& name) {
  return name.find(".self_attn.") != std::string::npos && name.find("norm") == std::string::npos;
}

// Dense and shared-expert MLP projections (2-D): LoRA targets under lora_experts.
bool is_mlp_projection(const WeightEntry& e, const std::string& name) {
  return e.shape.size() == 2 && name.find(".mlp.") != std::string::npos && name.find(".mlp.gate.") == std::string::npos;
}

Trainer::Param make_param(Backend& be, std::string name, Tensor value) {
  Trainer::Param p;
  p.name = std::move(name);
  p.value = std::move(value);
  const Shape& shape = p.value.shape();
  p.grad = std::make_shared<Tensor>(Tensor::zeros(be, MOE_DTYPE_F32, shape, Lifetime::kPersistent));
  p.m = Tensor::zeros(be, MOE_DTYPE_F32, shape, Lifetime::kPersistent);
  p.v = Tensor::zeros(be, MOE_DTYPE_F32, shape, Lifetime::kPersistent);
  return p;
}

}  // namespace

Trainer::Trainer(Model& model, const TrainerOptions& options) : model_(model), options_(options), rng_(options.seed) {
  const TrainerOptions& o = options_;
  require(o.lr >= 0 && o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps > 0 && o.weight_decay >= 0 &&
              o.clip_norm >= 0 && o.grad_accumulation >= 1 && o.warmup_steps >= 0 && o.total_steps >= 0 &&
              o.label_smoothing >= 0 && o.label_smoothing < 1 && o.gumbel_temperature > 0 &&
              o.gumbel_temperature_final > 0 && o.lora_rank >= 0 && o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1 &&
              o.capacity_factor >= 0 && std::isfinite(o.capacity_factor),
          MOE_ERR_INVALID_ARGUMENT,
          "trainer options out of range (lr >= 0, 0 <= beta < 1, eps > 0, weight_decay >= 0, clip >= 0, "
          "grad_accumulation >= 1, 0 <= label_smoothing < 1, temperatures > 0, lora_rank >= 0, "
          "0 <= min_lr_ratio <= 1, capacity_factor >= 0 and finite)");
  require(o.schedule != Schedule::kCosine || o.total_steps > 0, MOE_ERR_INVALID_ARGUMENT,
          "the cosine schedule needs total_steps > 0");
  const ModelConfig& c = model.config();
  if (o.bias_update_speed > 0 && c.arch != Architecture::kDeepseekV3)
    fail(MOE_ERR_UNSUPPORTED, "auxiliary-loss-free balancing moves the routers' selection bias, which only "
                              "deepseek_v3 models have (e_score_correction_bias)");
  std::vector<std::regex> patterns;
  for (const auto& p : o.freeze_patterns) {
    try {
      patterns.emplace_back(p);
    } catch (const std::regex_error& e) {
      fail(MOE_ERR_INVALID_ARGUMENT, "freeze pattern '" + p + "' is not a valid regular expression: " + e.what());
    }
  }
  for (int32_t e : o.freeze_experts)
    require(e >= 0 && e < c.num_experts, MOE_ERR_INVALID_ARGUMENT,
            "freeze_experts: expert " + std::to_string(e) + " is outside [0, " + std::to_string(c.num_experts) + ")");

  Backend& be = model.context().backend();
  for (const WeightEntry& e : weight_table(c, model.mutable_weights())) {
    if (!e.is_parameter) continue;
    const std::string name = e.fused_name.empty() ? e.parts.front().name : e.fused_name;
    if (o.task != Task::kCausalLm && name == "lm_head.weight") continue;  // a task head replaces it
    const int64_t layer = layer_of(name);
    const bool frozen = matches_any(e, patterns) || (layer >= 0 && layer < o.freeze_layers_below) ||
                        (o.freeze_layers_below > 0 && name == "model.embed_tokens.weight");
    if (o.lora_rank > 0) {
      // LoRA trains adapters only; base weights stay as they are (and may be bf16).
      const bool target = (o.lora_attention && is_attention_projection(name)) ||
                          (o.lora_experts && (is_mlp_projection(e, name) || e.routed_experts));
      if (!target || frozen) continue;
      // Routed experts: one adapter per expert, stacked like their weights.
      const int64_t experts = e.routed_experts ? e.shape[0] : 1, out = e.shape[e.shape.size() - 2],
                    in = e.shape.back(), r = o.lora_rank;
      Shape a_shape{r, in}, b_shape{out, r};
      if (e.routed_experts) {
        a_shape.insert(a_shape.begin(), experts);
        b_shape.insert(b_shape.begin(), experts);
      }
      // A ~ N(0, 1/rank) and B = 0 (peft's initialisation): the adapter starts as a no-op.
      std::normal_distribution<float> normal(0.f, 1.f / static_cast<float>(r));
      std::vector<float> a(static_cast<size_t>(experts * r * in));
      for (auto& x : a) x = normal(rng_);
      auto lora = std::make_unique<Lora>();
      lora->weight = *e.target;
      lora->scale = o.lora_alpha / static_cast<float>(r);
      lora->a = make_param(be, name + ".lora_A", Tensor::from_host(be, MOE_DTYPE_F32, a_shape, a.data(), Lifetime::kPersistent));
      lora->b = make_param(be, name + ".lora_B", Tensor::zeros(be, MOE_DTYPE_F32, b_shape, Lifetime::kPersistent));
      if (e.routed_experts && !o.freeze_experts.empty()) {
        // A frozen expert's adapter stays a no-op.
        lora->a.frozen_experts.assign(static_cast<size_t>(c.num_experts), false);
        for (int32_t x : o.freeze_experts) lora->a.frozen_experts[static_cast<size_t>(x)] = true;
        lora->b.frozen_experts = lora->a.frozen_experts;
      }
      lora_.push_back(std::move(lora));
      continue;
    }
    if (frozen) continue;
    if (e.target->dtype() != MOE_DTYPE_F32)
      fail(MOE_ERR_UNSUPPORTED, "training '" + name + "' needs f32 weights: load the model with dtype f32 (LoRA "
                                "fine-tuning works on bf16 weights)");
    auto p = std::make_unique<Param>(make_param(be, name, *e.target));
    if (e.routed_experts && !o.freeze_experts.empty()) {
      p->frozen_experts.assign(static_cast<size_t>(c.num_experts), false);
      for (int32_t x : o.freeze_experts) p->frozen_experts[static_cast<size_t>(x)] = true;
    }
    params_.push_back(std::move(p));
  }
  if (o.task != Task::kCausalLm) {
    if (o.task == Task::kSequenceClassification && o.num_labels < 2)
      fail(MOE_ERR_INVALID_ARGUMENT, "sequence classification needs num_labels >= 2, got " + std::to_string(o.num_labels));
    const int64_t classes = o.task == Task::kSequenceClassification ? o.num_labels : 2;
    // transformers initialises new heads like every linear: N(0, initializer_range = 0.02), bias 0.
    std::normal_distribution<float> normal(0.f, 0.02f);
    std::vector<float> w(static_cast<size_t>(classes * c.hidden_size));
    for (auto& x : w) x = normal(rng_);
    const bool span = o.task == Task::kSpanExtraction;
    head_weight_ = std::make_unique<Param>(make_param(
        be, span ? "qa_outputs.weight" : "score.weight",
        Tensor::from_host(be, MOE_DTYPE_F32, {classes, c.hidden_size}, w.data(), Lifetime::kPersistent)));
    if (span)
      head_bias_ = std::make_unique<Param>(
          make_param(be, "qa_outputs.bias", Tensor::zeros(be, MOE_DTYPE_F32, {2}, Lifetime::kPersistent)));
  }
  if (params_.empty() && lora_.empty() && !head_weight_)
    fail(MOE_ERR_INVALID_ARGUMENT, "every weight is frozen: nothing would train");
}

Trainer::~Trainer() = default;

std::vector<const Trainer::Param*> Trainer::parameters() const {
  std::vector<const Param*> all;
  for (const auto& p : params_) all.push_back(p.get());
  for (const auto& l : lora_) {
    all.push_back(&l->a);
    all.push_back(&l->b);
  }
  if (head_weight_) all.push_back(head_weight_.get());
  if (head_bias_) all.push_back(head_bias_.get());
  return all;
}

std::vector<Trainer::Param*> Trainer::owned_parameters() {
  std::vector<Param*> owned;
  for (auto& l : lora_) {
    owned.push_back(&l->a);
    owned.push_back(&l->b);
  }
  if (head_weight_) owned.push_back(head_weight_.get());
  if (head_bias_) owned.push_back(head_bias_.get());
  return owned;
}

int64_t Trainer::trainable_parameters() const {
  int64_t n = 0;
  for (const auto& p : params_) {
    int64_t frozen = 0;
    for (bool f : p->frozen_experts) frozen += f;
    n += p->value.numel() - (p->frozen_experts.empty() ? 0 : p->value.numel() / static_cast<int64_t>(p->frozen_experts.size()) * frozen);
  }
  // LoRA matrices and heads count whole (a frozen expert's adapter slice does not train).
  for (const auto& l : lora_) {
    for (const Param* p : {&l->a, &l->b}) {
      int64_t frozen = 0;
      for (bool f : p->frozen_experts) frozen += f;
      n += p->value.numel() - (p->frozen_experts.empty() ? 0 : p->value.numel() / static_cast<int64_t>(p->frozen_experts.size()) * frozen);
    }
  }
  if (head_weight_) n += head_weight_->value.numel();
  if (head_bias_) n += head_bias_->value.numel();
  return n;
}

double Trainer::learning_rate() const {
  const TrainerOptions& o = options_;
  const double step = static_cast<double>(step_) + 1;  // the step about to be taken, counted from 1
  if (o.warmup_steps > 0 && step <= static_cast<double>(o.warmup_steps))
    return o.lr * step / static_cast<double>(o.warmup_steps);
  if (o.schedule == Schedule::kConstant) return o.lr;
  const double span = std::max<double>(1.0, static_cast<double>(o.total_steps - o.warmup_steps));
  const double progress = std::min(1.0, (step - static_cast<double>(o.warmup_steps)) / span);
  const double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine);
}

std::vector<int32_t> Trainer::moe_layers() const {
  std::vector<int32_t> layers;
  for (int64_t l = 0; l < model_.config().num_layers; ++l)
    if (model_.config().is_moe_layer(l)) layers.push_back(static_cast<int32_t>(l));
  return layers;
}

StepStats Trainer::step(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len) {
  return run(ids, labels, batch, seq_len, true);
}

StepStats Trainer::evaluate(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len) {
  return run(ids, labels, batch, seq_len, false);
}

StepStats Trainer::run(const int32_t* ids, const int32_t* labels, int64_t batch, int64_t seq_len, bool train) {
  const ModelConfig& c = model_.config();
  require(batch >= 1 && seq_len >= 2, MOE_ERR_INVALID_ARGUMENT,
          "train: the batch is empty (need at least one sequence of at least 2 tokens, got " + std::to_string(batch) +
              " x " + std::to_string(seq_len) + ")");
  require(seq_len <= model_.max_sequence_length(), MOE_ERR_LIMIT,
          "train: sequences of " + std::to_string(seq_len) + " tokens exceed the maximum sequence length " +
              std::to_string(model_.max_sequence_length()));
  const int64_t tokens = batch * seq_len;
  for (int64_t i = 0; i < tokens; ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      fail(MOE_ERR_INVALID_ARGUMENT, "train: token id " + std::to_string(ids[i]) + " at row " + std::to_string(i / seq_len) +
                                         ", position " + std::to_string(i % seq_len) + " is outside the vocabulary [0, " +
                                         std::to_string(c.vocab_size) + ")");
  const bool lm = options_.task == Task::kCausalLm;
  require(lm || labels != nullptr, MOE_ERR_INVALID_ARGUMENT,
          "train: classification and span heads need labels (a class, or a start and end, per sequence)");
  // transformers' causal-LM loss: the logits at position t predict the label at t + 1.
  std::vector<int32_t> shifted(lm ? static_cast<size_t>(tokens) : 0, options_.ignore_index);
  int64_t counted = 0;
  for (int64_t b = 0; lm && b < batch; ++b)
    for (int64_t t = 0; t + 1 < seq_len; ++t) {
      int32_t label = (labels ? labels : ids)[b * seq_len + t + 1];
      if (label != options_.ignore_index && (label < 0 || label >= c.vocab_size))
        fail(MOE_ERR_INVALID_ARGUMENT, "train: label " + std::to_string(label) + " at row " + std::to_string(b) +
                                           ", position " + std::to_string(t + 1) + " is outside the vocabulary");
      shifted[b * seq_len + t] = label;
      counted += label != options_.ignore_index;
    }

  Backend& be = model_.context().backend();
  TokenBatch tb;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq_len; ++t) {
      tb.ids.push_back(ids[b * seq_len + t]);
      tb.slot.push_back(static_cast<int32_t>(b));
      tb.position.push_back(static_cast<int32_t>(t));
      // A classification head reads each sequence's last token; the LM and span heads every token.
      if (options_.task != Task::kSequenceClassification || t == seq_len - 1) tb.logit_rows.push_back(b * seq_len + t);
    }
  ad::Tape tape;
  TrainingPass pass;
  pass.tape = train ? &tape : nullptr;
  pass.capacity_factor = options_.capacity_factor;
  // Unmerged adapters take part in evaluation too (as constants).
  for (const auto& l : lora_)
    pass.lora[l->weight.data()] = train ? LoraAdapter{ad::parameter(l->a.value, l->a.grad), ad::parameter(l->b.value, l->b.grad), l->scale}
                                        : LoraAdapter{ad::constant(l->a.value), ad::constant(l->b.value), l->scale};
  if (train) {
    for (const auto& p : params_) pass.grads[p->value.data()] = p->grad;
    if (options_.gating == Gating::kGumbel) {
      pass.gumbel = true;
      const double progress = options_.total_steps > 0 ? std::min(1.0, static_cast<double>(step_) / options_.total_steps) : 0.0;
      pass.temperature = static_cast<float>(options_.gumbel_temperature +
                                            (options_.gumbel_temperature_final - options_.gumbel_temperature) * progress);
      pass.noise_seed = options_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step_ * options_.grad_accumulation + micro_);
    }
  }
  KvCache cache(be, c, batch, seq_len);
  StepStats stats;
  stats.step = step_;
  Tensor dlogits;
  if (lm) {
    Tensor logits = model_.transformer().forward(tb, cache, &pass);
    stats.tokens = counted;
    Tensor label_t = Tensor::from_host(be, MOE_DTYPE_I32, {tokens}, shifted.data());
    Tensor loss_rows = Tensor::empty(be, MOE_DTYPE_F32, {tokens});
    const float grad_scale =
        counted ? 1.f / (static_cast<float>(counted) * static_cast<float>(options_.grad_accumulation)) : 0.f;
    if (train) dlogits = Tensor::empty(be, MOE_DTYPE_F32, logits.shape());
    ops::cross_entropy(logits, label_t, options_.ignore_index, options_.label_smoothing, grad_scale, loss_rows,
                       train ? &dlogits : nullptr);
    double loss_sum = 0;
    for (float v : loss_rows.to_vector<float>()) loss_sum += v;
    stats.loss = counted ? loss_sum / static_cast<double>(counted) : 0.0;
  } else {
    head_loss(pass, model_.transformer().hidden_states(tb, cache, &pass), labels, batch, seq_len, train, stats);
  }

  // Router statistics and auxiliary losses (host side: tokens x experts per layer).
  std::vector<RouterLayer> routers(pass.router_logits.size());
  for (size_t l = 0; l < routers.size(); ++l) {
    routers[l].logits = pass.router_logits[l].value.to_vector<float>();
    routers[l].ids = pass.expert_ids[l].to_vector<int32_t>();
    stats.expert_load.push_back(expert_load(routers[l], c.num_experts));
  }
  int64_t dropped = 0;
  for (int64_t d : pass.dropped) dropped += d;
  if (!routers.empty())
    stats.dropped_fraction = static_cast<double>(dropped) /
                             (static_cast<double>(routers.size()) * static_cast<double>(tokens) * c.experts_per_token);
  if (train) {
    if (expert_load_total_.empty()) expert_load_total_.assign(stats.expert_load.size(), std::vector<int64_t>(c.num_experts, 0));
    for (size_t l = 0; l < stats.expert_load.size(); ++l)
      for (size_t e = 0; e < stats.expert_load[l].size(); ++e) expert_load_total_[l][e] += stats.expert_load[l][e];
  }
  const int k = static_cast<int>(c.experts_per_token);
  const double aux_scale = train ? 1.0 / options_.grad_accumulation : 0.0;
  if (options_.aux_loss_coef > 0)
    stats.aux_loss += options_.aux_loss_coef * load_balancing_loss(routers, c.num_experts, k, options_.aux_loss_coef * aux_scale);
  if (options_.z_loss_coef > 0)
    stats.aux_loss += options_.z_loss_coef * router_z_loss(routers, c.num_experts, options_.z_loss_coef * aux_scale);
  if (options_.sequence_balance_coef > 0)
    stats.aux_loss += options_.sequence_balance_coef *
                      sequence_balance_loss(routers, std::vector<int64_t>(static_cast<size_t>(batch), seq_len), c.num_experts,
                                            k, options_.sequence_balance_coef * aux_scale);

  if (!train) return stats;
  if (!std::isfinite(stats.loss) || !std::isfinite(stats.aux_loss)) {
    stats.skipped = true;
    if (options_.nan_policy == NanPolicy::kStop)
      fail(MOE_ERR_BACKEND, "train: the loss is not finite at step " + std::to_string(step_) + " (" + std::to_string(stats.loss) +
                                "); stopping as the nan policy asks");
    // The step is skipped but counted, so a run over a fixed number of steps still ends and the
    // data order stays aligned with the step count.
    for (const Param* p : parameters()) ops::scale(*p->grad, 0.f);
    micro_ = 0;
    stats.step = ++step_;
    return stats;
  }
  if (lm) ad::accumulate(pass.logits, dlogits);
  for (size_t l = 0; l < routers.size(); ++l)
    if (!routers[l].dlogits.empty() && pass.router_logits[l].requires_grad())
      ad::accumulate(pass.router_logits[l],
                     Tensor::from_host(be, MOE_DTYPE_F32, pass.router_logits[l].value.shape(), routers[l].dlogits.data()));
  tape.backward();

  if (++micro_ < options_.grad_accumulation) return stats;
  micro_ = 0;
  apply_update(stats);
  if (!stats.skipped && options_.bias_update_speed > 0) update_router_biases(stats.expert_load);
  return stats;
}

void Trainer::head_loss(TrainingPass& pass, const ad::Var& hidden, const int32_t* labels, int64_t batch,
                        int64_t seq_len, bool train, StepStats& stats) {
  const bool span = options_.task == Task::kSpanExtraction;
  const int64_t classes = head_weight_->value.dim(0);
  ad::Var weight = train ? ad::parameter(head_weight_->value, head_weight_->grad) : ad::constant(head_weight_->value);
  ad::Var logits = ad::linear(pass.tape, hidden, weight);  // [rows, classes]
  // The losses are over a handful of values per sequence: computed on the host.
  std::vector<float> host = logits.value.to_vector<float>();
  std::vector<float> bias = head_bias_ ? head_bias_->value.to_vector<float>() : std::vector<float>();
  const int64_t rows = logits.value.dim(0);
  for (int64_t r = 0; r < rows && !bias.empty(); ++r)
    for (int64_t j = 0; j < classes; ++j) host[r * classes + j] += bias[j];
  std::vector<float> dlogits(host.size(), 0.f);
  std::vector<double> dbias(static_cast<size_t>(classes), 0.0);
  double loss = 0;
  int64_t correct = 0;
  const double scale = 1.0 / (static_cast<double>(batch) * options_.grad_accumulation);
  // Cross-entropy of `n` scores (stride `stride`) against `target`; adds its gradient times `weight`.
  auto score = [&](int64_t first, int64_t n, int64_t stride, int32_t target, double weight) {
    double mx = -INFINITY, sum = 0;
    int64_t best = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = host[first + i * stride];
      if (v > mx) mx = v, best = i;
    }
    for (int64_t i = 0; i < n; ++i) sum += std::exp(host[first + i * stride] - mx);
    loss += weight * (mx + std::log(sum) - host[first + target * stride]);
    for (int64_t i = 0; i < n; ++i) {
      double g = std::exp(host[first + i * stride] - mx) / sum - (i == target ? 1.0 : 0.0);
      dlogits[first + i * stride] += static_cast<float>(g * weight * scale * batch);
    }
    return best == target;
  };
  for (int64_t b = 0; b < batch; ++b) {
    if (!span) {
      const int32_t label = labels[b];
      require(label >= 0 && label < classes, MOE_ERR_INVALID_ARGUMENT,
              "train: label " + std::to_string(label) + " of sequence " + std::to_string(b) + " is outside [0, " +
                  std::to_string(classes) + ")");
      correct += score(b * classes, classes, 1, label, 1.0 / static_cast<double>(batch));
    } else {
      const int32_t start = labels[2 * b], end = labels[2 * b + 1];
      require(start >= 0 && end >= start && end < seq_len, MOE_ERR_INVALID_ARGUMENT,
              "train: span [" + std::to_string(start) + ", " + std::to_string(end) + "] of sequence " + std::to_string(b) +
                  " is not within its " + std::to_string(seq_len) + " tokens");
      // transformers' question answering loss: the mean of the start and end cross-entropies.
      const int64_t base = b * seq_len * classes;
      const bool s_ok = score(base, seq_len, classes, start, 0.5 / static_cast<double>(batch));
      const bool e_ok = score(base + 1, seq_len, classes, end, 0.5 / static_cast<double>(batch));
      correct += s_ok && e_ok;
    }
  }
  stats.loss = loss;
  stats.tokens = batch;
  stats.accuracy = static_cast<double>(correct) / static_cast<double>(batch);
  if (!train || !std::isfinite(loss)) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < classes; ++j) dbias[j] += dlogits[r * classes + j];
  Backend& be = logits.value.backend();
  ad::accumulate(logits, Tensor::from_host(be, MOE_DTYPE_F32, logits.value.shape(), dlogits.data()));
  if (head_bias_) {
    std::vector<float> g(dbias.begin(), dbias.end());
    Tensor gb = Tensor::from_host(be, MOE_DTYPE_F32, {classes}, g.data());
    ops::add(*head_bias_->grad, gb, *head_bias_->grad);
  }
}

void Trainer::apply_update(StepStats& stats) {
  std::vector<Param*> all;
  for (const Param* p : parameters()) all.push_back(const_cast<Param*>(p));
  double norm2 = 0;
  for (Param* p : all) norm2 += ops::sum_squares(*p->grad);
  stats.grad_norm = std::sqrt(norm2);
  if (!std::isfinite(stats.grad_norm)) {
    stats.skipped = true;
    if (options_.nan_policy == NanPolicy::kStop)
      fail(MOE_ERR_BACKEND, "train: the gradient norm is not finite at step " + std::to_string(step_));
    ++step_;
  } else {
    if (options_.clip_norm > 0 && stats.grad_norm > options_.clip_norm)
      for (Param* p : all) ops::scale(*p->grad, static_cast<float>(options_.clip_norm / stats.grad_norm));
    stats.lr = learning_rate();
    ++step_;
    for (Param* p : all) {
      if (p->frozen_experts.empty()) {
        ops::adamw_update(p->value, *p->grad, p->m, p->v, static_cast<float>(stats.lr), options_.beta1, options_.beta2,
                          options_.eps, options_.weight_decay, step_);
        continue;
      }
      for (size_t e = 0; e < p->frozen_experts.size(); ++e) {
        if (p->frozen_experts[e]) continue;
        const int64_t i = static_cast<int64_t>(e);
        Tensor value = p->value.slice(i, i + 1), grad = p->grad->slice(i, i + 1), m = p->m.slice(i, i + 1),
               v = p->v.slice(i, i + 1);
        ops::adamw_update(value, grad, m, v, static_cast<float>(stats.lr), options_.beta1, options_.beta2, options_.eps,
                          options_.weight_decay, step_);
      }
    }
  }
  stats.step = step_;
  for (Param* p : all) ops::scale(*p->grad, 0.f);
}

void Trainer::update_router_biases(const std::vector<std::vector<int64_t>>& loads) {
  // DeepSeek-V3's auxiliary-loss-free balancing: after each step, each expert's selection bias moves
  // by gamma toward balance (down if it took more than the mean load, up if fewer).
  ModelWeights& w = model_.mutable_weights();
  size_t moe_layer = 0;
  for (size_t l = 0; l < w.layers.size() && moe_layer < loads.size(); ++l) {
    Tensor& bias = w.layers[l].moe.router_bias;
    if (!bias.defined()) continue;
    const auto& load = loads[moe_layer++];
    double mean = 0;
    for (int64_t x : load) mean += static_cast<double>(x);
    mean /= static_cast<double>(load.size());
    std::vector<float> b = bias.to_vector<float>();
    for (size_t e = 0; e < b.size(); ++e)
      b[e] += options_.bias_update_speed * (static_cast<double>(load[e]) < mean ? 1.f : static_cast<double>(load[e]) > mean ? -1.f : 0.f);
    bias.copy_from_host(b.data(), b.size() * sizeof(float));
  }
}

}  // namespace moe
