/* The public C ABI used from C alone: version and status strings, context and plugin list, model
 * load and describe, forward on a ragged batch, several threads running forward on one model (same
 * logits as one thread), generation with a callback that stops it, and argument errors. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

static int g_passed = 0, g_failed = 0;

#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (cond) {                                              \
      ++g_passed;                                            \
    } else {                                                 \
      ++g_failed;                                            \
      fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                          \
      fprintf(stderr, "\n");                                 \
    }                                                        \
  } while (0)

static moe_context* make_context(void) {
  moe_context_options o;
  const char* dir = getenv("MOE_PLUGIN_DIR");
  moe_context* ctx = NULL;
  moe_context_options_init(&o);
  o.backend = "cpu";
  if (dir) {
    o.plugin_dirs = &dir;
    o.num_plugin_dirs = 1;
    o.search_default_dirs = 0;
  }
  if (moe_context_create(&o, &ctx) != MOE_OK) {
    fprintf(stderr, "context: %s\n", moe_last_error_message());
    exit(1);
  }
  return ctx;
}

/* A ragged batch of three sequences. */
static const int32_t kIds[] = {5, 17, 3, 99, 250, 7, 8, 1, 2, 300, 41, 42, 43, 44};
static const int64_t kLengths[] = {4, 7, 3};
#define TOKENS 14
#define SEQS 3

struct thread_job {
  moe_model* model;
  float* logits;
  size_t count;
  moe_status status;
};

static void* run_forward(void* arg) {
  struct thread_job* job = (struct thread_job*)arg;
  int i;
  for (i = 0; i < 3 && job->status == MOE_OK; ++i)
    job->status = moe_forward(job->model, kIds, kLengths, SEQS, NULL, job->logits, (int64_t)job->count);
  return NULL;
}

static int32_t stop_after_three(int32_t token, const char* text, void* user) {
  int* seen = (int*)user;
  (void)token;
  (void)text;
  return ++*seen >= 3;
}

int main(void) {
  moe_context* ctx = make_context();
  moe_model* model = NULL;
  moe_model* missing = NULL;
  moe_model_info info;
  moe_status s;
  size_t count;
  float* single;
  enum { kThreads = 4 };
  struct thread_job jobs[kThreads];
  pthread_t threads[kThreads];
  int t, seen = 0;
  int32_t prompt[] = {1, 2, 3, 4}, out[16];
  int64_t produced = 0;
  moe_generate_options g;

  CHECK(strcmp(moe_version(), "0.1.0") == 0, "version %s", moe_version());
  CHECK(strcmp(moe_status_string(MOE_ERR_FORMAT), "MOE_ERR_FORMAT") == 0, "status string");
  CHECK(strcmp(moe_context_backend(ctx), "cpu") == 0, "backend %s", moe_context_backend(ctx));

  s = moe_model_load(ctx, MOE_REFERENCE_DIR "/mixtral", NULL, &model);
  CHECK(s == MOE_OK, "load: %s", moe_last_error_message());
  if (s != MOE_OK) return 1;

  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK(moe_model_describe(model, &info) == MOE_OK, "describe");
  CHECK(strcmp(info.architecture, "mixtral") == 0 && info.num_experts == 8 && info.experts_per_token == 2,
        "describe: %s %lld %lld", info.architecture, (long long)info.num_experts, (long long)info.experts_per_token);

  count = (size_t)(TOKENS * info.vocab_size);
  single = malloc(count * sizeof(float));
  s = moe_forward(model, kIds, kLengths, SEQS, NULL, single, (int64_t)count);
  CHECK(s == MOE_OK, "forward: %s", moe_last_error_message());

  /* Several threads at once on one model: the same logits as one thread, to the bit. */
  for (t = 0; t < kThreads; ++t) {
    jobs[t].model = model;
    jobs[t].count = count;
    jobs[t].logits = malloc(count * sizeof(float));
    jobs[t].status = MOE_OK;
    pthread_create(&threads[t], NULL, run_forward, &jobs[t]);
  }
  for (t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
    CHECK(jobs[t].status == MOE_OK, "thread %d: %s", t, moe_status_string(jobs[t].status));
    CHECK(memcmp(jobs[t].logits, single, count * sizeof(float)) == 0, "thread %d logits differ", t);
    free(jobs[t].logits);
  }

  /* A callback that stops generation after three tokens. */
  moe_generate_options_init(&g);
  g.max_new_tokens = 16;
  g.callback = stop_after_three;
  g.user_data = &seen;
  s = moe_generate(model, prompt, 4, &g, out, 16, &produced);
  CHECK(s == MOE_OK && produced == 3 && seen == 3, "generate stopped: status %d, %lld tokens", s, (long long)produced);

  /* An options struct from an older, smaller header: fields past its size keep their defaults. */
  g.struct_size = (uint32_t)offsetof(moe_generate_options, top_k);
  g.max_new_tokens = 2;
  s = moe_generate(model, prompt, 4, &g, out, 16, &produced);
  CHECK(s == MOE_OK && produced == 2, "small options struct: %d %lld", s, (long long)produced);

  /* Several prompts at once: each row's greedy tokens are what moe_generate gives on that prompt alone. */
  {
    int32_t batch_out[SEQS * 6], alone[6];
    int64_t counts[SEQS], alone_count, r, start = 0;
    moe_generate_options_init(&g);
    g.max_new_tokens = 6;
    s = moe_generate_batch(model, kIds, kLengths, SEQS, &g, NULL, NULL, batch_out, 6, counts);
    CHECK(s == MOE_OK, "generate_batch: %s", moe_last_error_message());
    for (r = 0; r < SEQS && s == MOE_OK; start += kLengths[r], ++r) {
      s = moe_generate(model, kIds + start, kLengths[r], &g, alone, 6, &alone_count);
      CHECK(s == MOE_OK && alone_count == counts[r] && memcmp(alone, batch_out + r * 6, 6 * sizeof(int32_t)) == 0,
            "generate_batch row %lld differs from generating it alone", (long long)r);
    }
    CHECK(moe_generate_batch(model, kIds, kLengths, 0, &g, NULL, NULL, batch_out, 6, counts) == MOE_ERR_INVALID_ARGUMENT,
          "generate_batch without rows");
    CHECK(moe_generate_batch(model, kIds, kLengths, SEQS, &g, NULL, NULL, batch_out, 5, counts) ==
              MOE_ERR_INVALID_ARGUMENT && strstr(moe_last_error_message(), "capacity") != NULL,
          "generate_batch small capacity: %s", moe_last_error_message());
  }

  /* Errors: a status and a message naming the problem; nothing crashes. */
  CHECK(moe_forward(NULL, kIds, kLengths, SEQS, NULL, single, (int64_t)count) == MOE_ERR_INVALID_ARGUMENT, "null model");
  CHECK(strstr(moe_last_error_message(), "model") != NULL, "message: %s", moe_last_error_message());
  CHECK(moe_forward(model, kIds, kLengths, SEQS, NULL, single, 5) == MOE_ERR_INVALID_ARGUMENT, "small capacity");
  CHECK(strstr(moe_last_error_message(), "logits_capacity") != NULL, "message: %s", moe_last_error_message());
  CHECK(moe_model_load(ctx, "/nonexistent/model", NULL, &missing) != MOE_OK && missing == NULL, "missing model dir");
  CHECK(strstr(moe_last_error_message(), "/nonexistent/model") != NULL, "message: %s", moe_last_error_message());
  CHECK(moe_context_create(NULL, NULL) == MOE_ERR_INVALID_ARGUMENT, "null out");

  free(single);
  moe_model_free(model);
  moe_context_free(ctx);
  moe_model_free(NULL);
  moe_context_free(NULL);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
