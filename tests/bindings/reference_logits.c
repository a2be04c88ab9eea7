/* What the binding tests compare with: logits and a greedy generation computed through the C API
 * alone, written to one file that every language's test reads.
 *
 *   reference_logits MODEL_DIR PLUGIN_DIR OUT_FILE
 *
 * The file is little-endian: int64 num_sequences, num_tokens, vocab; int64 lengths[num_sequences];
 * int32 ids[num_tokens]; float32 logits[num_tokens * vocab]; int64 prompt_length;
 * int32 prompt[prompt_length]; int64 generated_count; int32 generated[generated_count]. */
#include <stdio.h>
#include <stdlib.h>

#include "moe/moe.h"

/* A ragged batch: three sequences of different lengths. */
static const int32_t kIds[] = {5, 17, 3, 99, 250, 7, 8, 1, 2, 300, 41, 42, 43, 44, 319, 0};
static const int64_t kLengths[] = {4, 9, 3};
#define SEQUENCES 3
#define TOKENS 16
static const int32_t kPrompt[] = {1, 20, 30, 40, 50};
#define PROMPT_LENGTH 5
#define NEW_TOKENS 12

static int fail(const char* what) {
  fprintf(stderr, "reference_logits: %s: %s\n", what, moe_last_error_message());
  return 1;
}

static void write_i64(FILE* f, int64_t v) { fwrite(&v, sizeof v, 1, f); }

int main(int argc, char** argv) {
  moe_context_options co;
  moe_context* ctx = NULL;
  moe_model* model = NULL;
  moe_model_info info = {0};
  moe_generate_options g;
  float* logits;
  int32_t generated[NEW_TOKENS];
  int64_t generated_count = 0;
  const char* plugin_dir;
  FILE* out;

  if (argc != 4) {
    fprintf(stderr, "usage: reference_logits MODEL_DIR PLUGIN_DIR OUT_FILE\n");
    return 2;
  }
  plugin_dir = argv[2];
  moe_context_options_init(&co);
  co.backend = "cpu";
  co.plugin_dirs = &plugin_dir;
  co.num_plugin_dirs = 1;
  co.search_default_dirs = 0;
  if (moe_context_create(&co, &ctx) != MOE_OK) return fail("context");
  if (moe_model_load(ctx, argv[1], NULL, &model) != MOE_OK) return fail("load");
  info.struct_size = sizeof info;
  if (moe_model_describe(model, &info) != MOE_OK) return fail("describe");

  logits = malloc(sizeof(float) * TOKENS * (size_t)info.vocab_size);
  if (moe_forward(model, kIds, kLengths, SEQUENCES, NULL, logits, TOKENS * info.vocab_size) != MOE_OK)
    return fail("forward");
  moe_generate_options_init(&g);
  g.max_new_tokens = NEW_TOKENS;
  if (moe_generate(model, kPrompt, PROMPT_LENGTH, &g, generated, NEW_TOKENS, &generated_count) != MOE_OK)
    return fail("generate");

  out = fopen(argv[3], "wb");
  if (!out) {
    perror(argv[3]);
    return 1;
  }
  write_i64(out, SEQUENCES);
  write_i64(out, TOKENS);
  write_i64(out, info.vocab_size);
  fwrite(kLengths, sizeof(int64_t), SEQUENCES, out);
  fwrite(kIds, sizeof(int32_t), TOKENS, out);
  fwrite(logits, sizeof(float), TOKENS * (size_t)info.vocab_size, out);
  write_i64(out, PROMPT_LENGTH);
  fwrite(kPrompt, sizeof(int32_t), PROMPT_LENGTH, out);
  write_i64(out, generated_count);
  fwrite(generated, sizeof(int32_t), (size_t)generated_count, out);
  if (fclose(out) != 0) {
    perror(argv[3]);
    return 1;
  }
  free(logits);
  moe_model_free(model);
  moe_context_free(ctx);
  return 0;
}
