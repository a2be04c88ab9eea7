#include "text/tokenizer.h"

#include "base/error.h"
#include "context.h"
#include "plugins/host_api.h"

namespace moe {
namespace {

// Frees plugin-allocated memory (host->alloc_host_memory) when it goes out of scope.
struct HostMemory {
  void* ptr = nullptr;
  ~HostMemory() { host_api()->free_host_memory(ptr); }
};

void check(moe_status status, const char* what) {
  if (status == MOE_OK) return;
  auto why = take_plugin_error();
  fail(status, std::string("tokenizer ") + what + (why.empty() ? " failed" : ": " + why));
}

std::string take_text(char* text, size_t length) {
  HostMemory owner{text};
  return text ? std::string(text, length) : std::string();
}

}  // namespace

TokenStream::TokenStream(const moe_modality_ops& ops, void* stream) : ops_(ops), stream_(stream) {}

TokenStream::~TokenStream() {
  try {
    finish();
  } catch (...) {
    // A destructor must not throw; the plugin has freed the stream either way.
  }
}

std::string TokenStream::push(int32_t id) {
  if (!stream_) fail(MOE_ERR_INVALID_ARGUMENT, "tokenizer stream: push after finish");
  char* text = nullptr;
  size_t length = 0;
  check(ops_.stream_push(stream_, id, &text, &length), "stream_push");
  return take_text(text, length);
}

std::string TokenStream::finish() {
  if (!stream_) return {};
  char* text = nullptr;
  size_t length = 0;
  void* stream = stream_;
  stream_ = nullptr;
  check(ops_.stream_finish(stream, &text, &length), "stream_finish");
  return take_text(text, length);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const Context& context, const std::string& tokenizer_json,
                                           const std::string& tokenizer_config) {
  const moe_modality_ops& ops = context.modality("text");
  moe_plugin_tokenizer* impl = nullptr;
  take_plugin_error();
  check(ops.tokenizer_load(tokenizer_json.c_str(), tokenizer_config.empty() ? nullptr : tokenizer_config.c_str(), &impl),
        "load");
  return std::unique_ptr<Tokenizer>(new Tokenizer(ops, impl));
}

Tokenizer::~Tokenizer() { ops_.tokenizer_free(impl_); }

int64_t Tokenizer::vocab_size() const { return ops_.tokenizer_vocab_size(impl_); }

Encoding Tokenizer::encode(std::string_view text, bool add_special, bool want_offsets) const {
  moe_encoding e{};
  check(ops_.encode(impl_, text.data(), text.size(), add_special ? 1 : 0, want_offsets ? 1 : 0, &e), "encode");
  HostMemory ids{e.ids}, offsets{e.offsets};
  Encoding out;
  out.ids.assign(e.ids, e.ids + e.count);
  if (want_offsets && e.offsets) out.offsets.assign(e.offsets, e.offsets + 2 * e.count);
  return out;
}

std::string Tokenizer::decode(const int32_t* ids, int64_t count, bool skip_special) const {
  char* text = nullptr;
  size_t length = 0;
  check(ops_.decode(impl_, ids, count, skip_special ? 1 : 0, &text, &length), "decode");
  return take_text(text, length);
}

std::unique_ptr<TokenStream> Tokenizer::stream(bool skip_special) const {
  void* stream = nullptr;
  check(ops_.stream_create(impl_, skip_special ? 1 : 0, &stream), "stream_create");
  return std::make_unique<TokenStream>(ops_, stream);
}

int32_t Tokenizer::token_to_id(const std::string& token) const {
  int32_t id = -1;
  check(ops_.token_to_id(impl_, token.c_str(), &id), "token_to_id");
  return id;
}

}  // namespace moe
