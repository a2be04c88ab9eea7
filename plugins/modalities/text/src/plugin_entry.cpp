// libmoe_modality_text.so: the plugin's C entry point and its moe_modality_ops. Every function
// catches everything: the host sees a status and a message (host->set_error), never an exception.
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <string>

#include "decode_stream.h"
#include "text_error.h"
#include "moe/moe_plugin.h"
#include "tokenizer.h"

struct moe_plugin_tokenizer {
  moe::text::Tokenizer impl;
};

namespace {

using moe::text::fail;

const moe_host_api* g_host = nullptr;

template <typename Body>
moe_status guarded(Body&& body) noexcept {
  try {
    body();
    return MOE_OK;
  } catch (const moe::text::Error& e) {
    g_host->set_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    g_host->set_error("text plugin: out of memory");
    return MOE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_host->set_error((std::string("text plugin: internal error: ") + e.what()).c_str());
    return MOE_ERR_INTERNAL;
  } catch (...) {
    g_host->set_error("text plugin: internal error: unknown exception");
    return MOE_ERR_INTERNAL;
  }
}

void require(bool ok, const char* what) {
  if (!ok) fail(MOE_ERR_INVALID_ARGUMENT, what);
}

// Host memory that is freed again unless it is handed to the host with release().
struct HostBuffer {
  void* ptr = nullptr;
  explicit HostBuffer(size_t bytes) : ptr(g_host->alloc_host_memory(bytes ? bytes : 1)) {
    if (!ptr) throw std::bad_alloc();
  }
  ~HostBuffer() {
    if (ptr) g_host->free_host_memory(ptr);
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* release() { return std::exchange(ptr, nullptr); }
};

void give_text(const std::string& text, char** out_text, size_t* out_len) {
  HostBuffer buffer(text.size() + 1);
  std::memcpy(buffer.ptr, text.data(), text.size());
  static_cast<char*>(buffer.ptr)[text.size()] = '\0';
  *out_len = text.size();
  *out_text = static_cast<char*>(buffer.release());
}

moe_status tokenizer_load(const char* json_path, const char* config_path, moe_plugin_tokenizer** out) {
  return guarded([&] {
    require(out != nullptr, "tokenizer_load: out is NULL");
    *out = nullptr;
    require(json_path != nullptr && *json_path, "tokenizer_load: tokenizer_json_path is NULL or empty");
    *out = new moe_plugin_tokenizer{moe::text::load_tokenizer(json_path, config_path ? config_path : "")};
  });
}

void tokenizer_free(moe_plugin_tokenizer* tok) { delete tok; }

int64_t tokenizer_vocab_size(const moe_plugin_tokenizer* tok) { return tok ? tok->impl.vocab_size() : 0; }

moe_status encode(const moe_plugin_tokenizer* tok, const char* text, size_t text_len, int32_t add_special,
                  int32_t want_offsets, moe_encoding* out) {
  return guarded([&] {
    require(out != nullptr, "encode: out is NULL");
    *out = moe_encoding{};
    require(tok != nullptr, "encode: tokenizer is NULL");
    require(text != nullptr || text_len == 0, "encode: text is NULL but text_len is not 0");
    moe::text::Encoding enc;
    tok->impl.encode(std::string_view(text ? text : "", text_len), add_special != 0, want_offsets != 0, enc);
    size_t n = enc.ids.size();
    HostBuffer ids(n * sizeof(int32_t));
    std::memcpy(ids.ptr, enc.ids.data(), n * sizeof(int32_t));
    std::unique_ptr<HostBuffer> offsets;
    if (want_offsets) {
      offsets = std::make_unique<HostBuffer>(2 * n * sizeof(int64_t));
      auto* o = static_cast<int64_t*>(offsets->ptr);
      for (size_t i = 0; i < n; ++i) {
        o[2 * i] = enc.offsets[i].begin;
        o[2 * i + 1] = enc.offsets[i].end;
      }
    }
    out->count = static_cast<int64_t>(n);
    out->ids = static_cast<int32_t*>(ids.release());
    out->offsets = offsets ? static_cast<int64_t*>(offsets->release()) : nullptr;
  });
}

moe_status decode(const moe_plugin_tokenizer* tok, const int32_t* ids, int64_t count, int32_t skip_special,
                  char** out_text, size_t* out_len) {
  return guarded([&] {
    require(out_text != nullptr && out_len != nullptr, "decode: out_text or out_len is NULL");
    *out_text = nullptr;
    *out_len = 0;
    require(tok != nullptr, "decode: tokenizer is NULL");
    require(count >= 0, "decode: count is negative");
    require(ids != nullptr || count == 0, "decode: ids is NULL but count is not 0");
    give_text(tok->impl.decode(ids, static_cast<size_t>(count), skip_special != 0), out_text, out_len);
  });
}

moe_status token_to_id(const moe_plugin_tokenizer* tok, const char* token, int32_t* out_id) {
  return guarded([&] {
    require(tok != nullptr && token != nullptr && out_id != nullptr, "token_to_id: an argument is NULL");
    int32_t id = tok->impl.token_to_id(token);
    if (id < 0) fail(MOE_ERR_NOT_FOUND, std::string("token_to_id: \"") + token + "\" is not a token of this tokenizer");
    *out_id = id;
  });
}

moe_status stream_create(const moe_plugin_tokenizer* tok, int32_t skip_special, void** out_stream) {
  return guarded([&] {
    require(out_stream != nullptr, "stream_create: out_stream is NULL");
    *out_stream = nullptr;
    require(tok != nullptr, "stream_create: tokenizer is NULL");
    *out_stream = new moe::text::DecodeStream(tok->impl, skip_special != 0);
  });
}

moe_status stream_push(void* stream, int32_t id, char** out_text, size_t* out_len) {
  return guarded([&] {
    require(out_text != nullptr && out_len != nullptr, "stream_push: out_text or out_len is NULL");
    *out_text = nullptr;
    *out_len = 0;
    require(stream != nullptr, "stream_push: stream is NULL");
    give_text(static_cast<moe::text::DecodeStream*>(stream)->push(id), out_text, out_len);
  });
}

moe_status stream_finish(void* stream, char** out_text, size_t* out_len) {
  std::unique_ptr<moe::text::DecodeStream> owned(static_cast<moe::text::DecodeStream*>(stream));
  return guarded([&] {
    require(out_text != nullptr && out_len != nullptr, "stream_finish: out_text or out_len is NULL");
    *out_text = nullptr;
    *out_len = 0;
    require(owned != nullptr, "stream_finish: stream is NULL");
    give_text(owned->finish(), out_text, out_len);
  });
}

moe_status special_token_id(const moe_plugin_tokenizer* tok, const char* role, int32_t* out_id) {
  return guarded([&] {
    require(tok != nullptr && role != nullptr && out_id != nullptr, "special_token_id: an argument is NULL");
    int32_t id = tok->impl.special_token_id(role);
    if (id < 0) fail(MOE_ERR_NOT_FOUND, std::string("special_token_id: this tokenizer has no \"") + role + "\" token");
    *out_id = id;
  });
}

const moe_modality_ops kOps = {
    sizeof(moe_modality_ops), "text", tokenizer_load, tokenizer_free, tokenizer_vocab_size, encode, decode,
    token_to_id, stream_create, stream_push, stream_finish, special_token_id,
};

const moe_plugin_descriptor kDescriptor = {
    sizeof(moe_plugin_descriptor), MOE_PLUGIN_ABI_VERSION, MOE_PLUGIN_KIND_MODALITY, "text", "0.1.0", nullptr, &kOps,
};

}  // namespace

extern "C" MOE_PLUGIN_EXPORT const moe_plugin_descriptor* moe_plugin_entry(const moe_host_api* host) {
  // The host must speak our major version and give the functions this plugin calls.
  if (!host || MOE_PLUGIN_ABI_MAJOR_OF(host->abi_version) != MOE_PLUGIN_ABI_MAJOR ||
      !MOE_STRUCT_HAS(host, moe_host_api, free_host_memory) || !host->set_error || !host->alloc_host_memory ||
      !host->free_host_memory)
    return nullptr;
  g_host = host;
  return &kDescriptor;
}
