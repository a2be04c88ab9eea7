/* Load a checkpoint and generate, with the C API (moe.h) alone.
 *
 *   generate MODEL_DIR [PROMPT]
 *
 * With a tokenizer.json in MODEL_DIR the prompt is text and the output is printed as it is produced;
 * without one, the prompt is the ids 1 2 3 and the new ids are printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

#define MAX_NEW_TOKENS 16
#define MAX_PROMPT 256

static int fail(const char* what) {
  fprintf(stderr, "%s: %s\n", what, moe_last_error_message());
  return 1;
}

/* Called after each new token: print its text as soon as it is complete. */
static int32_t print_text(int32_t token, const char* text, void* user_data) {
  (void)token;
  (void)user_data;
  if (text) fputs(text, stdout);
  fflush(stdout);
  return 0; /* non-zero would stop generation */
}

int main(int argc, char** argv) {
  moe_context* ctx = NULL;
  moe_model* model = NULL;
  const moe_tokenizer* tok = NULL;
  moe_generate_options options;
  int32_t prompt[MAX_PROMPT] = {1, 2, 3}, out[MAX_NEW_TOKENS];
  int64_t prompt_length = 3, produced = 0, i;

  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL_DIR [PROMPT]\n", argv[0]);
    return 2;
  }
  if (moe_context_create(NULL, &ctx) != MOE_OK) return fail("context"); /* backend "auto" */
  printf("backend: %s (%s)\n", moe_context_backend(ctx), moe_context_device(ctx));
  if (moe_model_load(ctx, argv[1], NULL, &model) != MOE_OK) return fail("load");

  if (moe_model_tokenizer(model, &tok) == MOE_OK) {
    const char* text = argc > 2 ? argv[2] : "The experts";
    if (moe_tokenize(tok, text, strlen(text), 1, prompt, MAX_PROMPT, &prompt_length) != MOE_OK) return fail("tokenize");
    if (prompt_length > MAX_PROMPT) { /* only the count was set */
      fprintf(stderr, "the prompt has %lld tokens, more than %d\n", (long long)prompt_length, MAX_PROMPT);
      return 1;
    }
    printf("%s", text);
  }

  moe_generate_options_init(&options);
  options.max_new_tokens = MAX_NEW_TOKENS;
  options.callback = print_text;
  if (moe_generate(model, prompt, prompt_length, &options, out, MAX_NEW_TOKENS, &produced) != MOE_OK)
    return fail("generate");
  printf("\ngenerated %lld tokens:", (long long)produced);
  for (i = 0; i < produced; ++i) printf(" %d", out[i]);
  printf("\n");

  moe_model_free(model);
  moe_context_free(ctx);
  return 0;
}
