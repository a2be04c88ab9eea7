/* A third-party modality plugin, built the way an outside author builds one: against the installed
 * moe_plugin.h and moe_common.h only, never linking libmoe (CMakeLists.txt here uses
 * find_package(MoeSdk) for the headers, MoeSdk::plugin_api).
 *
 * It declares the modality "bytes": text whose tokens are its UTF-8 bytes (id = byte value, 256 ids),
 * the input of byte-level models. It fills the text entries of moe_modality_ops; a host looks a
 * modality up by its name, and libmoe lists it in `moe plugins` like any other plugin.
 *
 * Export only moe_plugin_entry: build with hidden visibility (the CMakeLists.txt does). */
#include <stdlib.h>
#include <string.h>

#include "moe/moe_plugin.h"

#define BYTES_VOCAB 256

static const moe_host_api* host;

/* A byte-level tokenizer has no vocabulary to load: one empty instance serves every load. */
struct moe_plugin_tokenizer {
  int32_t vocab_size;
};
static moe_plugin_tokenizer the_tokenizer = {BYTES_VOCAB};

static moe_status tokenizer_load(const char* tokenizer_json_path, const char* tokenizer_config_path,
                                 moe_plugin_tokenizer** out) {
  (void)tokenizer_json_path; /* nothing to read: the 256 byte values are the vocabulary */
  (void)tokenizer_config_path;
  if (!out) {
    host->set_error("bytes: tokenizer_load: out is NULL");
    return MOE_ERR_INVALID_ARGUMENT;
  }
  *out = &the_tokenizer;
  return MOE_OK;
}

static void tokenizer_free(moe_plugin_tokenizer* tok) { (void)tok; }

static int64_t tokenizer_vocab_size(const moe_plugin_tokenizer* tok) { return tok->vocab_size; }

static moe_status encode(const moe_plugin_tokenizer* tok, const char* text, size_t text_len, int32_t add_special,
                         int32_t want_offsets, moe_encoding* out) {
  size_t i;
  (void)tok;
  (void)add_special; /* no special tokens */
  out->ids = host->alloc_host_memory(text_len ? text_len * sizeof(int32_t) : 1);
  out->offsets = want_offsets ? host->alloc_host_memory(text_len ? 2 * text_len * sizeof(int64_t) : 1) : NULL;
  if (!out->ids || (want_offsets && !out->offsets)) {
    host->free_host_memory(out->ids);
    host->free_host_memory(out->offsets);
    host->set_error("bytes: encode: out of memory");
    return MOE_ERR_OUT_OF_MEMORY;
  }
  for (i = 0; i < text_len; ++i) {
    out->ids[i] = (unsigned char)text[i];
    if (out->offsets) {
      out->offsets[2 * i] = (int64_t)i;
      out->offsets[2 * i + 1] = (int64_t)i + 1;
    }
  }
  out->count = (int64_t)text_len;
  return MOE_OK;
}

static moe_status decode(const moe_plugin_tokenizer* tok, const int32_t* ids, int64_t count, int32_t skip_special,
                         char** out_text, size_t* out_len) {
  int64_t i;
  char* text;
  (void)tok;
  (void)skip_special;
  for (i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= BYTES_VOCAB) {
      host->set_error("bytes: decode: an id is outside [0, 256)");
      return MOE_ERR_INVALID_ARGUMENT;
    }
  }
  text = host->alloc_host_memory((size_t)count + 1);
  if (!text) {
    host->set_error("bytes: decode: out of memory");
    return MOE_ERR_OUT_OF_MEMORY;
  }
  for (i = 0; i < count; ++i) text[i] = (char)ids[i];
  text[count] = '\0';
  *out_text = text;
  *out_len = (size_t)count;
  return MOE_OK;
}

static moe_status token_to_id(const moe_plugin_tokenizer* tok, const char* token, int32_t* out_id) {
  (void)tok;
  if (!token || strlen(token) != 1) {
    host->set_error("bytes: token_to_id: a token is exactly one byte");
    return MOE_ERR_NOT_FOUND;
  }
  *out_id = (unsigned char)token[0];
  return MOE_OK;
}

static const moe_modality_ops ops = {
    sizeof(moe_modality_ops),
    "bytes",
    tokenizer_load,
    tokenizer_free,
    tokenizer_vocab_size,
    encode,
    decode,
    token_to_id,
    NULL, /* no streaming decode: a host streams bytes itself */
    NULL,
    NULL,
};

static const moe_plugin_descriptor descriptor = {
    sizeof(moe_plugin_descriptor),
    MOE_PLUGIN_ABI_VERSION,
    MOE_PLUGIN_KIND_MODALITY,
    "bytes",
    "1.0.0",
    NULL, /* no score(): usable everywhere */
    &ops,
};

__attribute__((visibility("default"))) const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* h) {
  if (!h || h->struct_size < offsetof(moe_host_api, free_host_memory) + sizeof(h->free_host_memory)) return NULL;
  host = h;
  return &descriptor;
}
