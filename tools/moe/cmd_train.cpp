// moe train / moe finetune: a new model from --config or a checkpoint from --model, trained on
// --data, checkpointed into --out with metrics.jsonl and loss.svg beside it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "commands.h"
#include "run_log.h"
#include "training_data.h"

namespace fs = std::filesystem;

namespace cli {
namespace {

struct EvalSet {
  Dataset data;
  int64_t batch = 8;
};

double evaluate(moe::trainer& t, const EvalSet& e, double* accuracy = nullptr) {
  double sum = 0, correct = 0;
  int64_t tokens = 0;
  for (int64_t start = 0; start < e.data.sequences; start += e.batch) {
    const int64_t n = std::min(e.batch, e.data.sequences - start);
    const auto begin = e.data.ids.begin() + start * e.data.seq_len;
    std::vector<int32_t> ids(begin, begin + n * e.data.seq_len), labels;
    if (!e.data.labels.empty()) {
      const auto lb = e.data.labels.begin() + start * e.data.label_width;
      labels.assign(lb, lb + n * e.data.label_width);
    }
    moe_train_stats s = t.evaluate(ids, n, e.data.seq_len, labels);
    sum += s.loss * static_cast<double>(s.tokens);
    tokens += s.tokens;
    correct += s.accuracy * static_cast<double>(n);
  }
  if (accuracy) *accuracy = correct / static_cast<double>(e.data.sequences);
  return tokens ? sum / static_cast<double>(tokens) : 0;
}

// Tokens each routed expert received over the run, per MoE layer: printed, and written to
// out/expert_load.json with the balancing settings, so runs with different balancing (auxiliary loss,
// auxiliary-loss-free bias updates, Gumbel gating, capacity) can be compared.
void report_expert_load(const moe::trainer& t, const moe_trainer_options& o, int64_t step, const std::string& out) {
  moe::trainer::expert_load_table load = t.expert_load();
  if (load.layers.empty()) return;
  nlohmann::json layers = nlohmann::json::array();
  double balance = 0;
  std::fprintf(stderr, "tokens per expert (assignments, summed over the run):\n");
  for (size_t l = 0; l < load.layers.size(); ++l) {
    const auto first = load.counts.begin() + static_cast<std::ptrdiff_t>(l * load.num_experts);
    std::vector<int64_t> row(first, first + load.num_experts);
    int64_t total = 0;
    for (int64_t x : row) total += x;
    const int64_t mx = *std::max_element(row.begin(), row.end()), mn = *std::min_element(row.begin(), row.end());
    const double mean = static_cast<double>(total) / static_cast<double>(row.size());
    const double ratio = mean > 0 ? static_cast<double>(mx) / mean : 0;
    balance += ratio;
    layers.push_back({{"layer", load.layers[l]}, {"tokens_per_expert", row}, {"total", total}, {"max", mx},
                      {"min", mn}, {"mean", mean}, {"max_over_mean", ratio}});
    std::fprintf(stderr, "  layer %d: max %lld, mean %.1f, min %lld, max/mean %.3f\n", load.layers[l],
                 static_cast<long long>(mx), mean, static_cast<long long>(mn), ratio);
  }
  nlohmann::json report = {
      {"step", step},
      {"num_experts", load.num_experts},
      {"gating", o.gating == MOE_GATING_GUMBEL ? "gumbel" : "topk"},
      {"aux_loss_coef", o.aux_loss_coef},
      {"bias_update_speed", o.bias_update_speed},
      {"capacity_factor", o.capacity_factor},
      {"max_over_mean", balance / static_cast<double>(load.layers.size())},
      {"layers", layers}};
  const fs::path path = fs::path(out) / "expert_load.json", temp = fs::path(out) / "expert_load.json.tmp";
  {
    std::ofstream f(temp);
    f << report.dump(2) << "\n";
    if (!f.flush()) throw std::runtime_error("cannot write " + temp.string());
  }
  fs::rename(temp, path);
}

int run(Args& args, bool finetune) {
  const std::string out = args.value("out");
  if (out.empty()) throw std::runtime_error("--out DIR is required (the checkpoint, metrics.jsonl and loss.svg go there)");
  const std::string data_path = args.value("data");
  if (data_path.empty()) throw std::runtime_error("--data FILE is required (a UTF-8 text file or a .safetensors file)");
  const std::string model_dir = args.value("model"), config = args.value("config");
  if (model_dir.empty() == config.empty())
    throw std::runtime_error("give exactly one of --model DIR (a checkpoint) or --config config.json (a new model)");
  const bool resume = args.flag("resume");
  const std::string tokenizer = args.value("tokenizer");
  const int64_t steps = args.integer("steps", 100), batch = args.integer("batch-size", 8);
  const int64_t seq_len = args.integer("seq-len", 128);
  const double eval_fraction = args.number("eval-fraction", 0.0);
  const int64_t eval_every = args.integer("eval-every", 0), save_every = args.integer("save-every", 0);
  if (steps < 1 || batch < 1 || seq_len < 2) throw std::runtime_error("--steps and --batch-size must be >= 1, --seq-len >= 2");

  moe_trainer_options o = moe::trainer::default_options();
  o.lr = static_cast<float>(args.number("lr", o.lr));
  o.weight_decay = static_cast<float>(args.number("weight-decay", o.weight_decay));
  o.beta1 = static_cast<float>(args.number("beta1", o.beta1));
  o.beta2 = static_cast<float>(args.number("beta2", o.beta2));
  o.eps = static_cast<float>(args.number("eps", o.eps));
  o.clip_norm = static_cast<float>(args.number("clip", o.clip_norm));
  o.warmup_steps = args.integer("warmup", 0);
  o.total_steps = steps;
  const std::string schedule = args.value("schedule", "constant");
  if (schedule != "constant" && schedule != "cosine") throw std::runtime_error("--schedule must be constant or cosine");
  o.schedule = schedule == "cosine" ? MOE_SCHEDULE_COSINE : MOE_SCHEDULE_CONSTANT;
  o.grad_accumulation = static_cast<int32_t>(args.integer("grad-accumulation", 1));
  o.seed = static_cast<uint64_t>(args.integer("seed", 0));
  o.label_smoothing = static_cast<float>(args.number("label-smoothing", 0.0));
  o.aux_loss_coef = static_cast<float>(args.number("aux-loss", 0.0));
  o.z_loss_coef = static_cast<float>(args.number("z-loss", 0.0));
  o.sequence_balance_coef = static_cast<float>(args.number("sequence-balance-loss", 0.0));
  o.bias_update_speed = static_cast<float>(args.number("bias-update-speed", 0.0));
  const std::string gating = args.value("gating", "topk");
  if (gating != "topk" && gating != "gumbel") throw std::runtime_error("--gating must be topk or gumbel");
  o.gating = gating == "gumbel" ? MOE_GATING_GUMBEL : MOE_GATING_TOPK;
  o.gumbel_temperature = static_cast<float>(args.number("gumbel-temperature", 1.0));
  o.gumbel_temperature_final = static_cast<float>(args.number("gumbel-temperature-final", o.gumbel_temperature));
  o.capacity_factor = static_cast<float>(args.number("capacity-factor", 0.0));
  const std::string nan = args.value("on-nan", "skip");
  if (nan != "skip" && nan != "stop") throw std::runtime_error("--on-nan must be skip or stop");
  o.nan_policy = nan == "stop" ? MOE_NAN_STOP : MOE_NAN_SKIP_STEP;
  const bool shuffle = !args.flag("no-shuffle");
  std::vector<int32_t> freeze_experts;
  std::vector<std::string> patterns;
  std::vector<const char*> pattern_ptrs;
  if (finetune) {
    o.freeze_layers_below = args.integer("freeze-layers", 0);
    if (args.has("freeze-experts")) freeze_experts = parse_ids(args.value("freeze-experts"), "freeze-experts");
    patterns = args.values("freeze");
    for (const auto& p : patterns) pattern_ptrs.push_back(p.c_str());
    o.lora_rank = static_cast<int32_t>(args.integer("lora-rank", 0));
    o.lora_alpha = static_cast<float>(args.number("lora-alpha", o.lora_alpha));
    o.lora_experts = args.flag("lora-experts") ? 1 : 0;
    const std::string task = args.value("task", "lm");
    if (task != "lm" && task != "classify" && task != "span") throw std::runtime_error("--task must be lm, classify or span");
    o.task = task == "classify" ? MOE_TASK_SEQUENCE_CLASSIFICATION : task == "span" ? MOE_TASK_SPAN_EXTRACTION : MOE_TASK_CAUSAL_LM;
    o.num_labels = static_cast<int32_t>(args.integer("num-labels", 0));
  }
  o.freeze_experts = freeze_experts.empty() ? nullptr : freeze_experts.data();
  o.num_freeze_experts = static_cast<int32_t>(freeze_experts.size());
  o.freeze_patterns = pattern_ptrs.empty() ? nullptr : pattern_ptrs.data();
  o.num_freeze_patterns = static_cast<int32_t>(pattern_ptrs.size());
  const bool merge = finetune && args.flag("merge-lora");
  moe::context ctx = make_context(args);
  args.finish();

  fs::create_directories(out);
  const bool resuming = resume && fs::exists(fs::path(out) / "trainer_state.json");
  moe::model::load_options lo;
  lo.dtype = MOE_LOAD_DTYPE_F32;
  moe::model m = resuming ? moe::model(ctx, out, lo)
                 : !model_dir.empty() ? moe::model(ctx, model_dir, lo)
                                      : moe::model::create(ctx, config, o.seed, MOE_LOAD_DTYPE_F32, tokenizer);
  Dataset train = load_dataset(data_path, m, seq_len);
  EvalSet eval{train.split_off(eval_fraction), batch};
  if (train.sequences < batch)
    std::fprintf(stderr, "note: %lld training sequences, fewer than --batch-size %lld: batches repeat sequences\n",
                 static_cast<long long>(train.sequences), static_cast<long long>(batch));
  if (o.task != MOE_TASK_CAUSAL_LM && train.labels.empty())
    throw std::runtime_error("--task classify/span needs a .safetensors --data with a 'labels' tensor");
  moe::trainer t(m, o);
  if (resuming) t.resume(out);
  if (o.task != MOE_TASK_CAUSAL_LM && eval.data.sequences) {
    double accuracy = 0, loss = evaluate(t, eval, &accuracy);
    std::fprintf(stderr, "before training: evaluation loss %.4f, accuracy %.4f\n", loss, accuracy);
  }
  moe_model_info info = m.describe();
  std::fprintf(stderr, "%s: %s model, %lld parameters; %lld training sequences of %lld tokens%s\n",
               finetune ? "finetune" : "train", info.architecture, static_cast<long long>(info.num_parameters),
               static_cast<long long>(train.sequences), static_cast<long long>(train.seq_len),
               eval.data.sequences ? (", " + std::to_string(eval.data.sequences) + " held out").c_str() : "");

  RunLog log(out, steps, batch * train.seq_len * o.grad_accumulation, resuming);
  const int64_t eval_interval = eval_every > 0 ? eval_every : std::max<int64_t>(1, steps / 10);
  int64_t step = 0;
  t.train(train.ids, train.sequences, train.seq_len, batch, steps, shuffle,
          [&](const moe_train_stats& s) {
            step = s.step;
            log.step(s);
            if (eval.data.sequences && (s.step % eval_interval == 0 || s.step == steps)) log.evaluation(s.step, evaluate(t, eval));
            if (save_every > 0 && s.step % save_every == 0 && s.step < steps) t.save(out);
            return true;
          },
          train.labels);
  if (merge) t.merge_lora();
  t.save(out);
  log.finish();
  if (o.task != MOE_TASK_CAUSAL_LM && eval.data.sequences) {
    double accuracy = 0, loss = evaluate(t, eval, &accuracy);
    std::fprintf(stderr, "after training: evaluation loss %.4f, accuracy %.4f\n", loss, accuracy);
  }
  report_expert_load(t, o, step, out);
  std::fprintf(stderr, "saved %s (step %lld): checkpoint, metrics.jsonl, loss.svg%s\n", out.c_str(),
               static_cast<long long>(step), m.describe().num_moe_layers > 0 ? ", expert_load.json" : "");
  return 0;
}

}  // namespace

int cmd_train(Args& args) { return run(args, false); }
int cmd_finetune(Args& args) { return run(args, true); }

}  // namespace cli
