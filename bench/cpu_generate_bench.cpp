// Times our engine, through the public C API only, on the CPU benchmark that bench/run_cpu_bench.py puts
// side by side with the PyTorch peer (bench/peer/time_peer.py does the same work and prints the same
// JSON lines):
//   prefill: one moe_forward of BATCH sequences x SEQ random ids with MOE_LOGITS_LAST;
//            tokens/s = BATCH*SEQ / time.
//   decode:  greedy moe_generate after a PROMPT-id prompt, no stop ids. moe_generate does prefill and
//            decode in one call, so each run times a call for NEW+1 tokens and one for 1 token back to
//            back; their difference is the time of NEW decode steps (both contain the same prefill and
//            first token). tokens/s = NEW / that difference. --decode-batch B > 1 times one
//            moe_generate_batch call for B such prompts (the first is the batch-1 prompt) the same way:
//            tokens/s = B * NEW / that difference. The peer decodes batch 1 only.
// Warm-up runs first, then the median of RUNS. Ids are splitmix64 outputs modulo the vocabulary (the
// peer draws the same streams), so both engines see the same inputs.
//
// Usage: moe_bench_generate CHECKPOINT_DIR [--dtype f32|bf16] [--threads N] [--runs 5] [--warmup 1]
//                           [--batch 8] [--seq 256] [--prompt 16] [--new 128] [--decode-batch 1]
#include <moe/moe.h>

#include "bench_util.h"

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

constexpr uint64_t kPrefillIdsSeed = 1;  // the peer (time_peer.py) uses the same two streams
constexpr uint64_t kPromptIdsSeed = 2;

struct Args {
  std::string checkpoint;
  std::string dtype = "f32";
  int threads = 0;
  int runs = 5;
  int warmup = 1;
  int batch = 8;
  int seq = 256;
  int prompt = 16;
  int new_tokens = 128;
  int decode_batch = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "moe_bench_generate: %s\nusage: moe_bench_generate CHECKPOINT_DIR [--dtype f32|bf16] [--threads N] "
               "[--runs N] [--warmup N] [--batch N] [--seq N] [--prompt N] [--new N] [--decode-batch N]\n",
               why);
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
    if (i + 1 >= argc) usage(("missing value after " + k).c_str());
    const char* v = argv[++i];
    auto positive = [&](int min) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < min || n > 1 << 24) usage((k + " needs an integer >= " + std::to_string(min)).c_str());
      return static_cast<int>(n);
    };
    if (k == "--dtype") a.dtype = v;
    else if (k == "--threads") a.threads = positive(0);
    else if (k == "--runs") a.runs = positive(1);
    else if (k == "--warmup") a.warmup = positive(0);
    else if (k == "--batch") a.batch = positive(1);
    else if (k == "--seq") a.seq = positive(1);
    else if (k == "--prompt") a.prompt = positive(1);
    else if (k == "--new") a.new_tokens = positive(1);
    else if (k == "--decode-batch") a.decode_batch = positive(1);
    else usage(("unknown option " + k).c_str());
  }
  if (a.checkpoint.empty()) usage("no checkpoint directory given");
  if (a.dtype != "f32" && a.dtype != "bf16") usage("--dtype must be f32 or bf16");
  return a;
}

void check(moe_status s, const char* what) {
  if (s == MOE_OK) return;
  std::fprintf(stderr, "moe_bench_generate: %s failed: %s: %s\n", what, moe_status_string(s), moe_last_error_message());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);

  moe_context_options copts;
  moe_context_options_init(&copts);
  copts.backend = "cpu";
  copts.num_threads = a.threads;
  moe_context* ctx = nullptr;
  check(moe_context_create(&copts, &ctx), "moe_context_create");

  moe_model_load_options lopts;
  moe_model_load_options_init(&lopts);
  lopts.dtype = a.dtype == "bf16" ? MOE_LOAD_DTYPE_BF16 : MOE_LOAD_DTYPE_F32;
  moe_model* model = nullptr;
  double t_load = seconds([&] { check(moe_model_load(ctx, a.checkpoint.c_str(), &lopts, &model), "moe_model_load"); });
  moe_model_info info;
  std::memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  check(moe_model_describe(model, &info), "moe_model_describe");

  const int64_t n_prefill = int64_t{a.batch} * a.seq;
  std::vector<int32_t> prefill_ids = random_ids(kPrefillIdsSeed, static_cast<size_t>(n_prefill), info.vocab_size);
  std::vector<int64_t> seq_lengths(a.batch, a.seq);
  std::vector<float> logits(static_cast<size_t>(a.batch * info.vocab_size));
  moe_forward_options fopts;
  moe_forward_options_init(&fopts);
  fopts.logits = MOE_LOGITS_LAST;

  std::vector<double> prefill;
  for (int i = 0; i < a.warmup + a.runs; ++i) {
    double t = seconds([&] {
      check(moe_forward(model, prefill_ids.data(), seq_lengths.data(), a.batch, &fopts, logits.data(),
                        static_cast<int64_t>(logits.size())),
            "moe_forward");
    });
    if (i >= a.warmup) prefill.push_back(t);
  }

  // Row b's prompt is ids [b * PROMPT, (b + 1) * PROMPT) of the stream: row 0 is the batch-1 prompt.
  const int rows = a.decode_batch;
  std::vector<int32_t> prompt = random_ids(kPromptIdsSeed, static_cast<size_t>(rows) * a.prompt, info.vocab_size);
  const std::vector<int64_t> prompt_lengths(static_cast<size_t>(rows), a.prompt);
  const int64_t row_capacity = int64_t{a.new_tokens} + 1;
  std::vector<int32_t> out(static_cast<size_t>(rows * row_capacity));
  std::vector<int64_t> counts(static_cast<size_t>(rows));
  auto generate = [&](int32_t max_new) {
    moe_generate_options gopts;
    moe_generate_options_init(&gopts);
    gopts.max_new_tokens = max_new;
    gopts.temperature = 0.0f;
    if (rows == 1)
      check(moe_generate(model, prompt.data(), a.prompt, &gopts, out.data(), row_capacity, counts.data()),
            "moe_generate");
    else
      check(moe_generate_batch(model, prompt.data(), prompt_lengths.data(), rows, &gopts, nullptr, nullptr, out.data(),
                               row_capacity, counts.data()),
            "moe_generate_batch");
    for (int64_t count : counts)
      if (count != max_new) {
        std::fprintf(stderr, "moe_bench_generate: a sequence made %lld tokens, %d asked\n",
                     static_cast<long long>(count), max_new);
        std::exit(1);
      }
  };
  std::vector<double> decode;
  for (int i = 0; i < a.warmup + a.runs; ++i) {
    double t_first = seconds([&] { generate(1); });
    double t_all = seconds([&] { generate(a.new_tokens + 1); });
    if (i >= a.warmup) decode.push_back(t_all - t_first);
  }

  char common[96];
  std::snprintf(common, sizeof common, "\"engine\": \"ours\", \"dtype\": \"%s\", \"threads\": %d", a.dtype.c_str(),
                a.threads);
  std::printf("{%s, \"phase\": \"load\", \"seconds\": %.9g}\n", common, t_load);
  std::printf("{%s, \"phase\": \"prefill\", \"batch\": %d, \"seq\": %d, \"tokens\": %lld, \"median_s\": %.9g, "
              "\"tokens_per_s\": %.9g, \"runs_s\": %s}\n",
              common, a.batch, a.seq, static_cast<long long>(n_prefill), median(prefill), n_prefill / median(prefill),
              json_list(prefill, 9).c_str());
  // "generated": row 0's tokens (the batch-1 sequence, which the peer also makes).
  out.resize(static_cast<size_t>(row_capacity));
  std::printf("{%s, \"phase\": \"decode\", \"decode_batch\": %d, \"prompt\": %d, \"tokens\": %d, \"median_s\": %.9g, "
              "\"tokens_per_s\": %.9g, \"runs_s\": %s, \"generated\": %s}\n",
              common, rows, a.prompt, a.new_tokens, median(decode), double(rows) * a.new_tokens / median(decode),
              json_list(decode, 9).c_str(), json_list(out).c_str());
  std::fflush(stdout);

  moe_model_free(model);
  moe_context_free(ctx);
  return 0;
}
