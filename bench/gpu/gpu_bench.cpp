// Times our engine, through the public C API only, on one phase of the GPU benchmark that
// bench/gpu/run_gpu_bench.py puts side by side with transformers (bench/gpu/peer_transformers.py does
// the same work and prints the same JSON line):
//   prefill   one moe_forward of BATCH sequences x SEQ random ids with MOE_LOGITS_LAST;
//             tokens/s = BATCH * SEQ / time.
//   decode    BATCH sequences each generating greedily after a PROMPT-id prompt: one moe_generate call
//             for BATCH 1, one moe_generate_batch call for BATCH > 1 (one prefill forward of all
//             prompts, then decode steps that run every sequence's next token through one forward).
//             Each run times all sequences making 1 token and then NEW + 1 tokens; the difference is
//             NEW decode steps of every sequence (both contain the same prefill and first token).
//             tokens/s = BATCH * NEW / that difference.
//   train     moe_trainer_step on BATCH sequences x SEQ random ids (AdamW, the causal LM loss);
//             tokens/s = BATCH * SEQ / time. The model is loaded as f32 (the trainer updates f32
//             weights); the backend's f32 matrix arithmetic is what MOE_CUDA_F32_MATH says.
// Warm-up runs first, then the median of RUNS. Ids are splitmix64 streams modulo the vocabulary (the
// peer draws the same ones).
//
// Usage: moe_bench_gpu CHECKPOINT_DIR --phase prefill|decode|train [--backend cuda] [--batch N] [--seq N]
//                      [--prompt N] [--new N] [--runs N] [--warmup N]
#include <moe/moe.h>

#include "../bench_util.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using moe_bench::json_list;
using moe_bench::median;
using moe_bench::random_ids;
using moe_bench::seconds;

constexpr uint64_t kPrefillIdsSeed = 1, kPromptIdsSeed = 2, kTrainIdsSeed = 3;  // the peer uses the same streams

struct Args {
  std::string checkpoint, phase, backend = "cuda";
  int batch = 1, seq = 128, prompt = 16, new_tokens = 64, runs = 5, warmup = 2;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "moe_bench_gpu: %s\nusage: moe_bench_gpu CHECKPOINT_DIR --phase prefill|decode|train [--backend cuda] "
               "[--batch N] [--seq N] [--prompt N] [--new N] [--runs N] [--warmup N]\n",
               why.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      if (!a.checkpoint.empty()) usage("more than one checkpoint directory given");
      a.checkpoint = k;
      continue;
    }
    if (i + 1 >= argc) usage("missing value after " + k);
    const char* v = argv[++i];
    auto number = [&](int min) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < min || n > 1 << 24) usage(k + " needs an integer >= " + std::to_string(min));
      return static_cast<int>(n);
    };
    if (k == "--phase") a.phase = v;
    else if (k == "--backend") a.backend = v;
    else if (k == "--batch") a.batch = number(1);
    else if (k == "--seq") a.seq = number(2);
    else if (k == "--prompt") a.prompt = number(1);
    else if (k == "--new") a.new_tokens = number(1);
    else if (k == "--runs") a.runs = number(1);
    else if (k == "--warmup") a.warmup = number(0);
    else usage("unknown option " + k);
  }
  if (a.checkpoint.empty()) usage("no checkpoint directory given");
  if (a.phase != "prefill" && a.phase != "decode" && a.phase != "train") usage("--phase must be prefill, decode or train");
  return a;
}

void check(moe_status s, const char* what) {
  if (s == MOE_OK) return;
  std::fprintf(stderr, "moe_bench_gpu: %s failed: %s: %s\n", what, moe_status_string(s), moe_last_error_message());
  std::exit(1);
}

// Warm-up calls of `once`, then the times of `runs` more.
template <class F>
std::vector<double> timed_runs(const Args& a, F&& once) {
  std::vector<double> t;
  for (int i = 0; i < a.warmup + a.runs; ++i) {
    const double s = once();
    if (i >= a.warmup) t.push_back(s);
  }
  return t;
}

std::vector<double> prefill(const Args& a, moe_model* model, int64_t vocab) {
  const std::vector<int32_t> ids = random_ids(kPrefillIdsSeed, static_cast<size_t>(a.batch) * a.seq, vocab);
  const std::vector<int64_t> lengths(a.batch, a.seq);
  std::vector<float> logits(static_cast<size_t>(a.batch * vocab));
  moe_forward_options o;
  moe_forward_options_init(&o);
  o.logits = MOE_LOGITS_LAST;
  return timed_runs(a, [&] {
    return seconds([&] {
      check(moe_forward(model, ids.data(), lengths.data(), a.batch, &o, logits.data(),
                        static_cast<int64_t>(logits.size())),
            "moe_forward");
    });
  });
}

std::vector<double> decode(const Args& a, moe_model* model, int64_t vocab) {
  const std::vector<int32_t> prompts = random_ids(kPromptIdsSeed, static_cast<size_t>(a.batch) * a.prompt, vocab);
  const std::vector<int64_t> lengths(static_cast<size_t>(a.batch), a.prompt);
  // Every sequence generates `count` tokens: one moe_generate, or one moe_generate_batch for all.
  auto generate_all = [&](int32_t count) {
    moe_generate_options g;
    moe_generate_options_init(&g);
    g.max_new_tokens = count;
    std::vector<int32_t> out(static_cast<size_t>(a.batch) * count);
    std::vector<int64_t> made(static_cast<size_t>(a.batch));
    if (a.batch == 1)
      check(moe_generate(model, prompts.data(), a.prompt, &g, out.data(), count, made.data()), "moe_generate");
    else
      check(moe_generate_batch(model, prompts.data(), lengths.data(), a.batch, &g,
                               nullptr, nullptr, out.data(), count, made.data()),
            "moe_generate_batch");
    for (int64_t m : made)
      if (m != count) {
        std::fprintf(stderr, "moe_bench_gpu: a sequence made %lld tokens, %d asked\n", static_cast<long long>(m), count);
        std::exit(1);
      }
  };
  return timed_runs(a, [&] {
    const double first = seconds([&] { generate_all(1); });
    return seconds([&] { generate_all(a.new_tokens + 1); }) - first;
  });
}

std::vector<double> train(const Args& a, moe_model* model, int64_t vocab) {
  const std::vector<int32_t> ids = random_ids(kTrainIdsSeed, static_cast<size_t>(a.batch) * a.seq, vocab);
  moe_trainer_options o;
  moe_trainer_options_init(&o);
  o.lr = 1e-4f;
  moe_trainer* trainer = nullptr;
  check(moe_trainer_create(model, &o, &trainer), "moe_trainer_create");
  moe_train_stats stats;
  std::memset(&stats, 0, sizeof stats);
  stats.struct_size = sizeof stats;
  auto t = timed_runs(a, [&] {
    return seconds([&] { check(moe_trainer_step(trainer, ids.data(), ids.data(), a.batch, a.seq, &stats), "step"); });
  });
  std::fprintf(stderr, "moe_bench_gpu: last training loss %.4f\n", stats.loss);
  moe_trainer_free(trainer);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  moe_context_options c;
  moe_context_options_init(&c);
  c.backend = a.backend.c_str();
  moe_context* ctx = nullptr;
  check(moe_context_create(&c, &ctx), "moe_context_create");

  moe_model_load_options l;
  moe_model_load_options_init(&l);
  l.dtype = a.phase == "train" ? MOE_LOAD_DTYPE_F32 : MOE_LOAD_DTYPE_BF16;
  moe_model* model = nullptr;
  const double load_s = seconds([&] { check(moe_model_load(ctx, a.checkpoint.c_str(), &l, &model), "moe_model_load"); });
  moe_model_info info;
  std::memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  check(moe_model_describe(model, &info), "moe_model_describe");

  std::vector<double> t;
  double tokens = 0;
  if (a.phase == "prefill") {
    t = prefill(a, model, info.vocab_size);
    tokens = double(a.batch) * a.seq;
  } else if (a.phase == "decode") {
    t = decode(a, model, info.vocab_size);
    tokens = double(a.batch) * a.new_tokens;
  } else {
    t = train(a, model, info.vocab_size);
    tokens = double(a.batch) * a.seq;
  }
  const char* f32_math = std::getenv("MOE_CUDA_F32_MATH");
  std::printf("{\"engine\": \"ours\", \"phase\": \"%s\", \"backend\": \"%s\", \"device\": \"%s\", \"weights\": \"%s\", "
              "\"f32_math\": \"%s\", \"batch\": %d, \"seq\": %d, \"prompt\": %d, \"new\": %d, \"load_s\": %.3f, "
              "\"median_s\": %.6g, \"tokens_per_s\": %.6g, \"runs_s\": %s}\n",
              a.phase.c_str(), moe_context_backend(ctx), moe_context_device(ctx), a.phase == "train" ? "f32" : "bf16",
              f32_math ? f32_math : "f32", a.batch, a.seq, a.prompt, a.new_tokens, load_s, median(t),
              tokens / median(t), json_list(t, 6).c_str());
  moe_model_free(model);
  moe_context_free(ctx);
  return 0;
}
