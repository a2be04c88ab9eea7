#include "text/tokenizer.h"

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>

#include "base/error.h"
#include "context.h"
#include "plugins/host_api.h"

namespace moe {
namespace {

// Turns a plugin status into the core's exception, with the message the plugin set.
void check(moe_status status, const char* what) {
  if (status == MOE_OK) return;
  std::string message = take_plugin_error();
  fail(status, message.empty() ? std::string(what) + " failed" : message);
}

// An array or string the plugin allocated with the host allocator.
struct HostFree {
  void operator()(void* p) const { host_api()->free_host_memory(p); }
};
using HostPtr = std::unique_ptr<void, HostFree>;

// Whether the plugin's table is large enough to hold the function at offset `end_of_field`.
bool table_has(const moe_modality_ops& ops, size_t end_of_field) { return ops.struct_size >= end_of_field; }

std::string take_text(char* text, size_t length) {
  HostPtr owned(text);
  return text ? std::string(text, length) : std::string();
}

}  // namespace

TokenStream::~TokenStream() {
  if (!stream_) return;
  char* text = nullptr;
  size_t length = 0;
  ops_.stream_finish(stream_, &text, &length);
  HostPtr owned(text);
  take_plugin_error();
}

std::string TokenStream::push(int32_t id) {
  require(stream_ != nullptr, MOE_ERR_INVALID_ARGUMENT, "TokenStream::push: the stream is finished");
  char* text = nullptr;
  size_t length = 0;
  check(ops_.stream_push(stream_, id, &text, &length), "text plugin stream_push");
  return take_text(text, length);
}

std::string TokenStream::finish() {
  require(stream_ != nullptr, MOE_ERR_INVALID_ARGUMENT, "TokenStream::finish: the stream is finished");
  char* text = nullptr;
  size_t length = 0;
  void* stream = std::exchange(stream_, nullptr);  // stream_finish frees it, even on failure
  check(ops_.stream_finish(stream, &text, &length), "text plugin stream_finish");
  return take_text(text, length);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const Context& context, const std::string& json_path,
                                           const std::string& config_path) {
  return load(context.modality("text"), json_path, config_path);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const moe_modality_ops& ops, const std::string& json_path,
                                           const std::string& config_path) {
  if (!table_has(ops, offsetof(moe_modality_ops, stream_finish) + sizeof(ops.stream_finish)) || !ops.tokenizer_load)
    fail(MOE_ERR_PLUGIN, "the text plugin's operations table lacks the tokenizer functions");
  moe_plugin_tokenizer* handle = nullptr;
  check(ops.tokenizer_load(json_path.c_str(), config_path.empty() ? nullptr : config_path.c_str(), &handle),
        "loading the tokenizer");
  return std::unique_ptr<Tokenizer>(new Tokenizer(ops, handle));
}

Tokenizer::~Tokenizer() { ops_.tokenizer_free(handle_); }

int64_t Tokenizer::vocab_size() const { return ops_.tokenizer_vocab_size(handle_); }

TextEncoding Tokenizer::encode(std::string_view text, bool add_special, bool want_offsets) const {
  moe_encoding e{};
  check(ops_.encode(handle_, text.data(), text.size(), add_special ? 1 : 0, want_offsets ? 1 : 0, &e),
        "text plugin encode");
  HostPtr ids(e.ids), offsets(e.offsets);
  TextEncoding out;
  out.ids.assign(e.ids, e.ids + e.count);
  if (want_offsets && e.offsets) {
    out.offsets.resize(static_cast<size_t>(e.count));
    for (int64_t i = 0; i < e.count; ++i) out.offsets[i] = {e.offsets[2 * i], e.offsets[2 * i + 1]};
  }
  return out;
}

std::vector<TextEncoding> Tokenizer::encode_batch(const std::vector<std::string_view>& texts, bool add_special,
                                                  bool want_offsets, int num_threads) const {
  std::vector<TextEncoding> out(texts.size());
  size_t threads = num_threads > 0 ? static_cast<size_t>(num_threads) : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, texts.size());
  if (threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special, want_offsets);
    return out;
  }
  // Each thread takes every threads-th text; the first failure (by text index) is rethrown.
  std::vector<std::exception_ptr> errors(texts.size());
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = t; i < texts.size(); i += threads) {
        try {
          out[i] = encode(texts[i], add_special, want_offsets);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i]) continue;
    try {
      std::rethrow_exception(errors[i]);
    } catch (const Error& e) {
      fail(e.status(), "encode_batch: text " + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  char* text = nullptr;
  size_t length = 0;
  check(ops_.decode(handle_, ids.data(), static_cast<int64_t>(ids.size()), skip_special ? 1 : 0, &text, &length),
        "text plugin decode");
  return take_text(text, length);
}

std::optional<int32_t> Tokenizer::token_to_id(const std::string& token) const {
  int32_t id = -1;
  moe_status status = ops_.token_to_id(handle_, token.c_str(), &id);
  if (status == MOE_ERR_NOT_FOUND) {
    take_plugin_error();
    return std::nullopt;
  }
  check(status, "text plugin token_to_id");
  return id;
}

std::optional<int32_t> Tokenizer::special_token_id(const std::string& role) const {
  if (!table_has(ops_, offsetof(moe_modality_ops, special_token_id) + sizeof(ops_.special_token_id)) ||
      !ops_.special_token_id)
    return std::nullopt;
  int32_t id = -1;
  moe_status status = ops_.special_token_id(handle_, role.c_str(), &id);
  if (status == MOE_ERR_NOT_FOUND) {
    take_plugin_error();
    return std::nullopt;
  }
  check(status, "text plugin special_token_id");
  return id;
}

std::unique_ptr<TokenStream> Tokenizer::stream(bool skip_special) const {
  void* stream = nullptr;
  check(ops_.stream_create(handle_, skip_special ? 1 : 0, &stream), "text plugin stream_create");
  return std::unique_ptr<TokenStream>(new TokenStream(ops_, stream));
}

}  // namespace moe
