// moe_tokenizer_*, moe_tokenize, moe_detokenize: text through the text modality plugin.
#include <cstring>

#include "guard.h"
#include "handles.h"
#include "text/tokenizer.h"

using moe::api::guarded;
using moe::api::require_arg;

extern "C" {

moe_status moe_tokenizer_load(moe_context* ctx, const char* tokenizer_json_path, const char* config_path,
                              moe_tokenizer** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_tokenizer_load: out is NULL");
    *out = nullptr;
    require_arg(ctx != nullptr, "moe_tokenizer_load: ctx is NULL");
    require_arg(tokenizer_json_path != nullptr && *tokenizer_json_path,
                "moe_tokenizer_load: tokenizer_json_path is NULL or empty");
    auto tok = std::make_unique<moe_tokenizer>();
    tok->context = ctx->impl;
    tok->owned = moe::Tokenizer::load(*ctx->impl, tokenizer_json_path, config_path ? config_path : "");
    tok->impl = tok->owned.get();
    *out = tok.release();
  });
}

void moe_tokenizer_free(moe_tokenizer* tok) { delete tok; }

moe_status moe_tokenize(const moe_tokenizer* tok, const char* text, size_t text_length, int32_t add_special,
                        int32_t* ids_out, int64_t ids_capacity, int64_t* count) {
  return guarded([&] {
    require_arg(count != nullptr, "moe_tokenize: count is NULL");
    *count = 0;
    require_arg(tok != nullptr && tok->impl != nullptr, "moe_tokenize: tok is NULL");
    require_arg(text != nullptr || text_length == 0, "moe_tokenize: text is NULL but text_length is not 0");
    require_arg(ids_capacity >= 0, "moe_tokenize: ids_capacity is negative");
    moe::TextEncoding e = tok->impl->encode(std::string_view(text ? text : "", text_length), add_special != 0);
    *count = static_cast<int64_t>(e.ids.size());
    // An empty encoding has no data pointer to copy from (memcpy's arguments must not be NULL even for 0 bytes).
    if (ids_out && ids_capacity >= *count && !e.ids.empty()) std::memcpy(ids_out, e.ids.data(), e.ids.size() * sizeof(int32_t));
  });
}

moe_status moe_detokenize(const moe_tokenizer* tok, const int32_t* ids, int64_t count, int32_t skip_special,
                          char* text_out, size_t text_capacity, size_t* length) {
  return guarded([&] {
    require_arg(length != nullptr, "moe_detokenize: length is NULL");
    *length = 0;
    require_arg(tok != nullptr && tok->impl != nullptr, "moe_detokenize: tok is NULL");
    require_arg(count >= 0, "moe_detokenize: count is negative");
    require_arg(ids != nullptr || count == 0, "moe_detokenize: ids is NULL but count is not 0");
    std::string text = tok->impl->decode(std::span<const int32_t>(ids, static_cast<size_t>(count)), skip_special != 0);
    *length = text.size();
    if (text_out && text_capacity > text.size()) {
      std::memcpy(text_out, text.data(), text.size());
      text_out[text.size()] = '\0';
    }
  });
}

}  // extern "C"
