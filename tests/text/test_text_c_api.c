/* The text part of the public C ABI, from C alone: moe_tokenizer_load (with a tokenizer_config.json
 * for BOS), moe_tokenize and moe_detokenize with their size-query calls and too-small buffers, and
 * the errors: invalid UTF-8, a missing file, an unknown id, NULL arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

static int g_passed = 0, g_failed = 0;

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (cond) {                                                         \
      ++g_passed;                                                       \
    } else {                                                            \
      ++g_failed;                                                       \
      fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                     \
      fprintf(stderr, "\n");                                            \
    }                                                                   \
  } while (0)

static moe_context* make_context(void) {
  moe_context_options o;
  const char* dir = getenv("MOE_PLUGIN_DIR");
  moe_context* ctx = NULL;
  moe_context_options_init(&o);
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

int main(void) {
  moe_context* ctx = make_context();
  moe_tokenizer* tok = NULL;
  moe_tokenizer* missing = NULL;
  const char* text = "Hello, \xE4\xB8\x96\xE7\x95\x8C! 42";
  int64_t count = 0, again = 0, with_bos = 0;
  int32_t ids[256];
  int32_t bos_ids[256];
  char out[256];
  size_t length = 0;
  moe_status s;

  s = moe_tokenizer_load(ctx, MOE_TEXT_DATA "/sp_bpe/tokenizer.json", MOE_TEXT_DATA "/sp_bpe/tokenizer_config.json", &tok);
  CHECK(s == MOE_OK && tok != NULL, "load: %s", moe_last_error_message());
  if (!tok) return 1;

  /* Size query, then the real call. */
  s = moe_tokenize(tok, text, strlen(text), 0, NULL, 0, &count);
  CHECK(s == MOE_OK && count > 0 && count < 256, "size query: status %d count %lld", s, (long long)count);
  s = moe_tokenize(tok, text, strlen(text), 0, ids, 256, &again);
  CHECK(s == MOE_OK && again == count, "encode: status %d count %lld vs %lld", s, (long long)again, (long long)count);
  /* A buffer one too small: only the count is set, the buffer is not written. */
  ids[count - 1] = -7;
  s = moe_tokenize(tok, text, strlen(text), 0, ids, count - 1, &again);
  CHECK(s == MOE_OK && again == count && ids[count - 1] == -7, "small buffer: status %d", s);
  moe_tokenize(tok, text, strlen(text), 0, ids, 256, &again);
  /* tokenizer_config.json's add_bos_token puts <s> (id 1) in front when special tokens are asked for. */
  s = moe_tokenize(tok, text, strlen(text), 1, bos_ids, 256, &with_bos);
  CHECK(s == MOE_OK && with_bos == count + 1 && bos_ids[0] == 1 && memcmp(bos_ids + 1, ids, count * sizeof(int32_t)) == 0,
        "BOS: status %d count %lld first %d", s, (long long)with_bos, bos_ids[0]);

  /* Decode: size query, exact round trip, a buffer without room for the NUL. */
  s = moe_detokenize(tok, ids, count, 0, NULL, 0, &length);
  CHECK(s == MOE_OK && length == strlen(text), "decode size: status %d length %zu", s, length);
  s = moe_detokenize(tok, ids, count, 0, out, sizeof(out), &length);
  CHECK(s == MOE_OK && strcmp(out, text) == 0, "decode: status %d \"%s\"", s, out);
  out[0] = 'X';
  s = moe_detokenize(tok, ids, count, 0, out, length, &length);
  CHECK(s == MOE_OK && out[0] == 'X' && length == strlen(text), "decode small buffer: status %d", s);
  s = moe_detokenize(tok, bos_ids, with_bos, 1, out, sizeof(out), &length);
  CHECK(s == MOE_OK && strcmp(out, text) == 0, "decode skipping <s>: status %d \"%s\"", s, out);

  /* Errors carry a status and a message naming what is wrong. */
  s = moe_tokenize(tok, "ab\xC3", 3, 0, ids, 256, &count);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT && strstr(moe_last_error_message(), "offset 2") != NULL, "invalid UTF-8: %d %s", s,
        moe_last_error_message());
  ids[0] = 99999;
  s = moe_detokenize(tok, ids, 1, 0, out, sizeof(out), &length);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT && strstr(moe_last_error_message(), "99999") != NULL, "unknown id: %d %s", s,
        moe_last_error_message());
  s = moe_tokenizer_load(ctx, "/nonexistent/tokenizer.json", NULL, &missing);
  CHECK(s == MOE_ERR_IO && missing == NULL && strstr(moe_last_error_message(), "/nonexistent/tokenizer.json") != NULL,
        "missing file: %d %s", s, moe_last_error_message());
  s = moe_tokenize(NULL, "a", 1, 0, ids, 256, &count);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT, "NULL tokenizer: %d", s);
  s = moe_tokenize(tok, NULL, 3, 0, ids, 256, &count);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT, "NULL text: %d", s);
  s = moe_tokenize(tok, "a", 1, 0, ids, 256, NULL);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT, "NULL count: %d", s);
  s = moe_detokenize(tok, NULL, 2, 0, out, sizeof(out), &length);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT, "NULL ids: %d", s);
  s = moe_tokenizer_load(ctx, NULL, NULL, &missing);
  CHECK(s == MOE_ERR_INVALID_ARGUMENT, "NULL path: %d", s);
  /* The empty text: no ids, and it decodes to the empty string. */
  s = moe_tokenize(tok, "", 0, 0, ids, 256, &count);
  CHECK(s == MOE_OK && count == 0, "empty text: %d %lld", s, (long long)count);
  s = moe_detokenize(tok, ids, 0, 0, out, sizeof(out), &length);
  CHECK(s == MOE_OK && length == 0 && out[0] == '\0', "empty decode: %d", s);

  moe_tokenizer_free(NULL);
  moe_tokenizer_free(tok);
  moe_context_free(ctx);
  printf("%d checks passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
