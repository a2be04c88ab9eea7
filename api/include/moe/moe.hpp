// MoE SDK C++ API: a header-only RAII layer over moe.h (the dnnl.hpp pattern). Handles free
// themselves; a failed call throws moe::error carrying the status and the library's message. Nothing
// here is compiled into libmoe, so the C ABI stays the only binary interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "moe/moe.h"

namespace moe {

class error : public std::runtime_error {
 public:
  error(moe_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  moe_status status() const noexcept { return status_; }

  // Throws when status is not MOE_OK, with moe_last_error_message() as the message.
  static void check(moe_status status) {
    if (status != MOE_OK) throw error(status, std::string(moe_status_string(status)) + ": " + moe_last_error_message());
  }

 private:
  moe_status status_;
};

// Owns a C handle and frees it with the matching *_free function.
template <typename T, void (*Free)(T*)>
class handle {
 public:
  handle() = default;
  explicit handle(T* raw) : ptr_(raw, Free) {}
  T* get() const { return ptr_.get(); }
  explicit operator bool() const { return static_cast<bool>(ptr_); }
  void reset(T* raw = nullptr) { ptr_.reset(raw, Free); }

 private:
  std::shared_ptr<T> ptr_;
};

inline std::string version() { return moe_version(); }

struct plugin_info {
  std::string path, name, version, reason;
  int32_t kind = 0, state = 0, score = 0;
  uint32_t abi_version = 0;
};

class context : public handle<moe_context, moe_context_free> {
 public:
  struct options {
    std::string backend = "auto";
    int32_t num_threads = 0;
    std::vector<std::string> plugin_dirs;
    bool search_default_dirs = true;
    int32_t log_level = MOE_LOG_WARN;
    int32_t device = 0;
  };

  context() : context(options()) {}
  explicit context(const options& o) {
    moe_context_options c;
    moe_context_options_init(&c);
    std::vector<const char*> dirs;
    for (const auto& d : o.plugin_dirs) dirs.push_back(d.c_str());
    c.backend = o.backend.c_str();
    c.num_threads = o.num_threads;
    c.plugin_dirs = dirs.empty() ? nullptr : dirs.data();
    c.num_plugin_dirs = static_cast<int32_t>(dirs.size());
    c.search_default_dirs = o.search_default_dirs ? 1 : 0;
    c.log_level = o.log_level;
    c.device = o.device;
    moe_context* raw = nullptr;
    error::check(moe_context_create(&c, &raw));
    reset(raw);
  }

  std::string backend() const { return moe_context_backend(get()); }
  std::string device() const { return moe_context_device(get()); }

  std::vector<plugin_info> plugins() const {
    int32_t n = 0;
    error::check(moe_plugins_count(get(), &n));
    std::vector<plugin_info> list;
    for (int32_t i = 0; i < n; ++i) {
      moe_plugin_info info{};
      info.struct_size = sizeof(info);
      error::check(moe_plugins_get(get(), i, &info));
      list.push_back({info.path, info.name, info.version, info.reason, info.kind, info.state, info.score,
                      info.abi_version});
    }
    return list;
  }
};

// A tokenizer: either owned (loaded from a file) or borrowed from a model.
class tokenizer {
 public:
  tokenizer(const context& ctx, const std::string& tokenizer_json, const std::string& config_json = "") {
    moe_tokenizer* raw = nullptr;
    error::check(moe_tokenizer_load(ctx.get(), tokenizer_json.c_str(), config_json.empty() ? nullptr : config_json.c_str(),
                                    &raw));
    owned_.reset(raw, moe_tokenizer_free);
    tok_ = raw;
  }
  // Borrowed: valid while the model that owns it lives.
  explicit tokenizer(const moe_tokenizer* borrowed) : tok_(borrowed) {}

  std::vector<int32_t> encode(const std::string& text, bool add_special = false) const {
    int64_t count = 0;
    error::check(moe_tokenize(tok_, text.data(), text.size(), add_special ? 1 : 0, nullptr, 0, &count));
    std::vector<int32_t> ids(static_cast<size_t>(count));
    error::check(moe_tokenize(tok_, text.data(), text.size(), add_special ? 1 : 0, ids.data(), count, &count));
    ids.resize(static_cast<size_t>(count));
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const {
    size_t length = 0;
    error::check(moe_detokenize(tok_, ids.data(), static_cast<int64_t>(ids.size()), skip_special ? 1 : 0, nullptr, 0,
                                &length));
    std::string text(length + 1, '\0');
    error::check(moe_detokenize(tok_, ids.data(), static_cast<int64_t>(ids.size()), skip_special ? 1 : 0, text.data(),
                                text.size(), &length));
    text.resize(length);
    return text;
  }

  const moe_tokenizer* get() const { return tok_; }

 private:
  std::shared_ptr<moe_tokenizer> owned_;
  const moe_tokenizer* tok_ = nullptr;
};

struct generate_options {
  int32_t max_new_tokens = 64;
  float temperature = 0.f;
  int32_t top_k = 0;
  float top_p = 1.f;
  uint64_t seed = 0;
  std::vector<int32_t> stop_ids;
  // Return false to stop; text is empty when the model has no tokenizer.
  std::function<bool(int32_t token, const std::string& text)> on_token;
};

class model : public handle<moe_model, moe_model_free> {
 public:
  struct load_options {
    moe_dtype dtype = MOE_LOAD_DTYPE_AUTO;
    int64_t max_sequence_length = 0;
    int64_t max_batch_tokens = 0;
  };

  model(const context& ctx, const std::string& directory) : model(ctx, directory, load_options()) {}

  // A new model from a config.json file, weights drawn from `seed` (see moe_model_create).
  static model create(const context& ctx, const std::string& config_json, uint64_t seed = 0,
                      moe_dtype dtype = MOE_LOAD_DTYPE_F32, const std::string& tokenizer_json = "") {
    moe_model_create_options c;
    moe_model_create_options_init(&c);
    c.seed = seed;
    c.dtype = dtype;
    c.tokenizer_json = tokenizer_json.empty() ? nullptr : tokenizer_json.c_str();
    moe_model* raw = nullptr;
    error::check(moe_model_create(ctx.get(), config_json.c_str(), &c, &raw));
    return model(raw);
  }
  model(const context& ctx, const std::string& directory, const load_options& o) {
    moe_model_load_options c;
    moe_model_load_options_init(&c);
    c.dtype = o.dtype;
    c.max_sequence_length = o.max_sequence_length;
    if (o.max_batch_tokens) c.max_batch_tokens = o.max_batch_tokens;
    moe_model* raw = nullptr;
    error::check(moe_model_load(ctx.get(), directory.c_str(), &c, &raw));
    reset(raw);
  }

  moe_model_info describe() const {
    moe_model_info info{};
    info.struct_size = sizeof(info);
    error::check(moe_model_describe(get(), &info));
    return info;
  }

  void save(const std::string& directory) const { error::check(moe_model_save(get(), directory.c_str())); }

  // Logits of a ragged batch, packed: [total tokens or sequences, vocab].
  std::vector<float> forward(const std::vector<std::vector<int32_t>>& sequences, bool last_only = false) const {
    std::vector<int32_t> ids;
    std::vector<int64_t> lengths;
    for (const auto& s : sequences) {
      ids.insert(ids.end(), s.begin(), s.end());
      lengths.push_back(static_cast<int64_t>(s.size()));
    }
    const int64_t vocab = describe().vocab_size;
    const int64_t rows = last_only ? static_cast<int64_t>(sequences.size()) : static_cast<int64_t>(ids.size());
    std::vector<float> logits(static_cast<size_t>(rows * vocab));
    moe_forward_options fo;
    moe_forward_options_init(&fo);
    fo.logits = last_only ? MOE_LOGITS_LAST : MOE_LOGITS_ALL;
    error::check(moe_forward(get(), ids.data(), lengths.data(), static_cast<int64_t>(lengths.size()), &fo,
                             logits.data(), static_cast<int64_t>(logits.size())));
    return logits;
  }

  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const generate_options& o = {}) const {
    moe_generate_options g = c_options(o);
    if (o.on_token) {
      g.callback = [](int32_t token, const char* text, void* user) -> int32_t {
        const auto& fn = *static_cast<const std::function<bool(int32_t, const std::string&)>*>(user);
        try {
          return fn(token, text ? std::string(text) : std::string()) ? 0 : 1;
        } catch (...) {
          return 1;  // an exception must not unwind through the C library: stop instead
        }
      };
      g.user_data = const_cast<void*>(static_cast<const void*>(&o.on_token));
    }
    std::vector<int32_t> out(static_cast<size_t>(o.max_new_tokens));
    int64_t count = 0;
    error::check(moe_generate(get(), prompt.data(), static_cast<int64_t>(prompt.size()), &g, out.data(),
                              static_cast<int64_t>(out.size()), &count));
    out.resize(static_cast<size_t>(count));
    return out;
  }

  // Receives each token of generate_batch with its row; returns MOE_GENERATE_CONTINUE, _STOP_ROW or
  // _STOP_ALL. text is empty when the model has no tokenizer.
  using batch_token_callback = std::function<int32_t(int64_t row, int32_t token, const std::string& text)>;

  // New tokens for every prompt, generated together (see moe_generate_batch): row r samples with
  // o.seed + r. o.on_token must be empty (it has no row); on_token gets every row's tokens.
  std::vector<std::vector<int32_t>> generate_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                   const generate_options& o = {},
                                                   const batch_token_callback& on_token = {}) const {
    if (o.on_token)
      throw error(MOE_ERR_INVALID_ARGUMENT,
                  "generate_batch: generate_options::on_token is set; pass a batch_token_callback instead");
    std::vector<int32_t> ids;
    std::vector<int64_t> lengths;
    for (const auto& p : prompts) {
      ids.insert(ids.end(), p.begin(), p.end());
      lengths.push_back(static_cast<int64_t>(p.size()));
    }
    moe_generate_options g = c_options(o);
    moe_batch_token_callback callback = nullptr;
    if (on_token) {
      callback = [](int64_t row, int32_t token, const char* text, void* user) -> int32_t {
        const auto& fn = *static_cast<const batch_token_callback*>(user);
        try {
          return fn(row, token, text ? std::string(text) : std::string());
        } catch (...) {
          return MOE_GENERATE_STOP_ALL;  // an exception must not unwind through the C library: stop instead
        }
      };
    }
    const size_t capacity = static_cast<size_t>(std::max<int32_t>(o.max_new_tokens, 0));
    std::vector<int32_t> out(prompts.size() * capacity);
    std::vector<int64_t> counts(prompts.size());
    const int32_t none = 0;  // a valid pointer when every prompt is empty, so the library names the empty row
    error::check(moe_generate_batch(get(), ids.empty() ? &none : ids.data(), lengths.data(),
                                    static_cast<int64_t>(lengths.size()), &g, callback,
                                    const_cast<void*>(static_cast<const void*>(&on_token)), out.data(),
                                    static_cast<int64_t>(capacity), counts.data()));
    std::vector<std::vector<int32_t>> rows(prompts.size());
    for (size_t r = 0; r < rows.size(); ++r)
      rows[r].assign(out.begin() + r * capacity, out.begin() + r * capacity + counts[r]);
    return rows;
  }

  // The tokenizer the checkpoint came with; throws MOE_ERR_NOT_FOUND when it had none.
  tokenizer get_tokenizer() const {
    const moe_tokenizer* tok = nullptr;
    error::check(moe_model_tokenizer(get(), &tok));
    return tokenizer(tok);
  }

 private:
  explicit model(moe_model* raw) { reset(raw); }
  // The C options for o, without its callback.
  static moe_generate_options c_options(const generate_options& o) {
    moe_generate_options g;
    moe_generate_options_init(&g);
    g.max_new_tokens = o.max_new_tokens;
    g.temperature = o.temperature;
    g.top_k = o.top_k;
    g.top_p = o.top_p;
    g.seed = o.seed;
    g.stop_ids = o.stop_ids.empty() ? nullptr : o.stop_ids.data();
    g.num_stop_ids = static_cast<int32_t>(o.stop_ids.size());
    return g;
  }
};

// Trains a model in place (see the training section of moe.h). Options are moe_trainer_options,
// initialised with defaults by the constructor's caller through trainer::default_options().
class trainer : public handle<moe_trainer, moe_trainer_free> {
 public:
  static moe_trainer_options default_options() {
    moe_trainer_options o;
    moe_trainer_options_init(&o);
    return o;
  }

  trainer(model& m, const moe_trainer_options& options) {
    moe_trainer* raw = nullptr;
    error::check(moe_trainer_create(m.get(), &options, &raw));
    reset(raw);
  }

  moe_train_stats step(const std::vector<int32_t>& ids, int64_t batch, int64_t seq_len,
                       const std::vector<int32_t>& labels = {}) {
    moe_train_stats s{};
    s.struct_size = sizeof(s);
    error::check(moe_trainer_step(get(), ids.data(), labels.empty() ? nullptr : labels.data(), batch, seq_len, &s));
    return s;
  }

  moe_train_stats evaluate(const std::vector<int32_t>& ids, int64_t batch, int64_t seq_len,
                           const std::vector<int32_t>& labels = {}) {
    moe_train_stats s{};
    s.struct_size = sizeof(s);
    error::check(moe_trainer_evaluate(get(), ids.data(), labels.empty() ? nullptr : labels.data(), batch, seq_len, &s));
    return s;
  }

  // Trains until `until_step`; on_step returning false cancels (moe::error with MOE_ERR_CANCELLED).
  void train(const std::vector<int32_t>& ids, int64_t num_sequences, int64_t seq_len, int64_t batch_size,
             int64_t until_step, bool shuffle, std::function<bool(const moe_train_stats&)> on_step = {},
             const std::vector<int32_t>& labels = {}) {
    auto callback = [](const moe_train_stats* s, void* user) -> int32_t {
      auto& fn = *static_cast<std::function<bool(const moe_train_stats&)>*>(user);
      try {
        return fn(*s) ? 0 : 1;
      } catch (...) {
        return 1;
      }
    };
    error::check(moe_trainer_train(get(), ids.data(), labels.empty() ? nullptr : labels.data(), num_sequences, seq_len,
                                   batch_size, until_step, shuffle ? 1 : 0, on_step ? +callback : nullptr,
                                   on_step ? &on_step : nullptr));
  }

  void save(const std::string& directory) const { error::check(moe_trainer_save(get(), directory.c_str())); }
  void resume(const std::string& directory) { error::check(moe_trainer_resume(get(), directory.c_str())); }
  void merge_lora() { error::check(moe_trainer_merge_lora(get())); }

  // Tokens routed to each expert during training, per MoE layer (see moe_trainer_expert_load).
  struct expert_load_table {
    std::vector<int32_t> layers;  // the model layer of each row
    int64_t num_experts = 0;
    std::vector<int64_t> counts;  // [layers.size(), num_experts], row-major
  };
  expert_load_table expert_load() const {
    expert_load_table t;
    int64_t rows = 0;
    error::check(moe_trainer_expert_load(get(), nullptr, 0, nullptr, &rows, &t.num_experts));
    t.layers.resize(static_cast<size_t>(rows));
    t.counts.resize(static_cast<size_t>(rows * t.num_experts));
    error::check(moe_trainer_expert_load(get(), t.counts.data(), static_cast<int64_t>(t.counts.size()), t.layers.data(),
                                         &rows, &t.num_experts));
    return t;
  }
};

}  // namespace moe
