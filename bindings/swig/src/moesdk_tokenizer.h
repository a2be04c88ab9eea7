// moesdk::Tokenizer: a tokenizer loaded from tokenizer.json, or a model's own, for the SWIG bindings.
#pragma once

#include <memory>
#include <string>

#include "moe/moe.h"
#include "moesdk_context.h"
#include "moesdk_error.h"

namespace moesdk {

class Tokenizer {
 public:
  Tokenizer(Context& context, const std::string& path) : Tokenizer(context, path, std::string()) {}
  // configPath: a tokenizer_config.json for BOS/EOS ("" for none).
  Tokenizer(Context& context, const std::string& path, const std::string& configPath) {
    moe_tokenizer* raw = nullptr;
    check(moe_tokenizer_load(context.get(), path.c_str(), configPath.empty() ? nullptr : configPath.c_str(), &raw));
    owned_.reset(raw, moe_tokenizer_free);
    tok_ = raw;
  }

#ifndef SWIG
  // A model's tokenizer: owner keeps the model (which owns it) alive.
  Tokenizer(const moe_tokenizer* borrowed, std::shared_ptr<moe_model> owner) : model_(std::move(owner)), tok_(borrowed) {}
#endif

  // moe_tokenize: fills ids when idsLength is large enough and returns the number of ids the text has
  // (call with an empty array first to learn it).
  int64_t encodeInto(const std::string& text, bool addSpecial, int32_t* ids, int64_t idsLength) const {
    int64_t count = 0;
    check(moe_tokenize(tok_, text.data(), text.size(), addSpecial ? 1 : 0, idsLength > 0 ? ids : nullptr, idsLength,
                       &count));
    return count;
  }

  std::string decode(const int32_t* ids, int64_t idCount, bool skipSpecial) const {
    size_t length = 0;
    check(moe_detokenize(tok_, ids, idCount, skipSpecial ? 1 : 0, nullptr, 0, &length));
    std::string text(length + 1, '\0');  // + the NUL the library writes
    check(moe_detokenize(tok_, ids, idCount, skipSpecial ? 1 : 0, text.data(), text.size(), &length));
    text.resize(length);
    return text;
  }

 private:
  std::shared_ptr<moe_tokenizer> owned_;
  std::shared_ptr<moe_model> model_;
  const moe_tokenizer* tok_ = nullptr;
};

}  // namespace moesdk
