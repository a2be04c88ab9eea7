// moe_model_*, moe_forward, moe_generate: argument checks, then the core Model.
#include <cstring>
#include <vector>

#include "guard.h"
#include "handles.h"
#include "model/model.h"

using moe::api::guarded;
using moe::api::require_arg;

namespace {

// moe_generate and moe_generate_batch read their options the same way: defaults, the fields the
// caller's struct_size covers, then the checks. o receives the options as read; capacity is the
// room for one sequence's new ids (capacity_name names it in errors).
moe::GenerateParams generate_params(const moe_generate_options* options, moe_generate_options& o, const int32_t* out_ids,
                                    int64_t capacity, const char* fn, const char* capacity_name) {
  const std::string f(fn);
  moe_generate_options_init(&o);
  moe::api::read_options(options, o, fn);
  require_arg(o.max_new_tokens >= 0, (f + ": options->max_new_tokens must be >= 0").c_str());
  require_arg(out_ids != nullptr || o.max_new_tokens == 0, (f + ": out_ids is NULL").c_str());
  if (capacity < o.max_new_tokens)
    moe::fail(MOE_ERR_INVALID_ARGUMENT, f + ": " + capacity_name + " (" + std::to_string(capacity) +
                                            ") is smaller than max_new_tokens (" + std::to_string(o.max_new_tokens) + ")");
  require_arg(o.num_stop_ids >= 0 && (o.num_stop_ids == 0 || o.stop_ids != nullptr),
              (f + ": stop_ids is NULL but num_stop_ids > 0").c_str());
  moe::GenerateParams p;
  p.max_new_tokens = o.max_new_tokens;
  p.sampling.temperature = o.temperature;
  p.sampling.top_k = o.top_k;
  p.sampling.top_p = o.top_p;
  p.sampling.seed = o.seed;
  p.stop_ids.assign(o.stop_ids, o.stop_ids + o.num_stop_ids);
  return p;
}

}  // namespace

extern "C" {

void moe_model_load_options_init_sized(moe_model_load_options* options, uint32_t struct_size) {
  moe_model_load_options d{};
  d.dtype = MOE_LOAD_DTYPE_AUTO;
  d.max_batch_tokens = 1 << 20;
  moe::api::fill_options(options, struct_size, d);
}

void moe_forward_options_init_sized(moe_forward_options* options, uint32_t struct_size) {
  moe_forward_options d{};
  d.logits = MOE_LOGITS_ALL;
  moe::api::fill_options(options, struct_size, d);
}

void moe_generate_options_init_sized(moe_generate_options* options, uint32_t struct_size) {
  moe_generate_options d{};
  d.max_new_tokens = 64;
  d.temperature = 0.f;
  d.top_p = 1.f;
  moe::api::fill_options(options, struct_size, d);
}

moe_status moe_model_load(moe_context* ctx, const char* directory, const moe_model_load_options* options,
                          moe_model** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_model_load: out is NULL");
    *out = nullptr;
    require_arg(ctx != nullptr, "moe_model_load: ctx is NULL");
    require_arg(directory != nullptr && *directory, "moe_model_load: directory is NULL or empty");
    moe_model_load_options o{};
    moe_model_load_options_init(&o);
    moe::api::read_options(options, o, "moe_model_load");
    require_arg(o.dtype == MOE_LOAD_DTYPE_AUTO || o.dtype == MOE_LOAD_DTYPE_F32 || o.dtype == MOE_LOAD_DTYPE_BF16,
                "moe_model_load: options->dtype must be MOE_LOAD_DTYPE_AUTO, _F32 or _BF16");
    require_arg(o.max_sequence_length >= 0 && o.max_batch_tokens >= 0,
                "moe_model_load: max_sequence_length and max_batch_tokens must be >= 0");
    moe::LoadOptions lo;
    lo.dtype = o.dtype;
    lo.max_sequence_length = o.max_sequence_length;
    if (o.max_batch_tokens > 0) lo.max_batch_tokens = o.max_batch_tokens;
    auto model = std::make_unique<moe_model>();
    model->impl = moe::Model::load(ctx->impl, directory, lo);
    model->architecture = model->impl->config().model_type;
    model->tokenizer.context = ctx->impl;
    model->tokenizer.impl = model->impl->tokenizer();
    *out = model.release();
  });
}

void moe_model_create_options_init_sized(moe_model_create_options* options, uint32_t struct_size) {
  moe_model_create_options d{};
  d.dtype = MOE_LOAD_DTYPE_F32;
  moe::api::fill_options(options, struct_size, d);
}

moe_status moe_model_create(moe_context* ctx, const char* config_json_path, const moe_model_create_options* options,
                            moe_model** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_model_create: out is NULL");
    *out = nullptr;
    require_arg(ctx != nullptr, "moe_model_create: ctx is NULL");
    require_arg(config_json_path != nullptr && *config_json_path, "moe_model_create: config_json_path is NULL or empty");
    moe_model_create_options o{};
    moe_model_create_options_init(&o);
    moe::api::read_options(options, o, "moe_model_create");
    require_arg(o.dtype == MOE_LOAD_DTYPE_F32 || o.dtype == MOE_LOAD_DTYPE_BF16,
                "moe_model_create: options->dtype must be MOE_LOAD_DTYPE_F32 or _BF16");
    auto model = std::make_unique<moe_model>();
    model->impl = moe::Model::create(ctx->impl, config_json_path, o.dtype, o.seed, o.tokenizer_json ? o.tokenizer_json : "");
    model->architecture = model->impl->config().model_type;
    model->tokenizer.context = ctx->impl;
    model->tokenizer.impl = model->impl->tokenizer();
    *out = model.release();
  });
}

moe_status moe_model_save(const moe_model* model, const char* directory) {
  return guarded([&] {
    require_arg(model != nullptr, "moe_model_save: model is NULL");
    require_arg(directory != nullptr && *directory, "moe_model_save: directory is NULL or empty");
    model->impl->save(directory);
  });
}

void moe_model_free(moe_model* model) { delete model; }

moe_status moe_model_tokenizer(const moe_model* model, const moe_tokenizer** out) {
  return guarded([&] {
    require_arg(out != nullptr, "moe_model_tokenizer: out is NULL");
    *out = nullptr;
    require_arg(model != nullptr, "moe_model_tokenizer: model is NULL");
    if (!model->tokenizer.impl)
      moe::fail(MOE_ERR_NOT_FOUND, "moe_model_tokenizer: the model was loaded from a directory without tokenizer.json");
    *out = &model->tokenizer;
  });
}

moe_status moe_model_describe(const moe_model* model, moe_model_info* info) {
  return guarded([&] {
    require_arg(model != nullptr && info != nullptr, "moe_model_describe: model and info must not be NULL");
    require_arg(info->struct_size >= offsetof(moe_model_info, dtype) + sizeof(moe_dtype),
                "moe_model_describe: info->struct_size is too small (set it to sizeof(moe_model_info))");
    const auto& c = model->impl->config();
    moe_model_info r{};
    r.struct_size = info->struct_size;
    r.architecture = model->architecture.c_str();
    r.dtype = model->impl->dtype();
    r.vocab_size = c.vocab_size;
    r.hidden_size = c.hidden_size;
    r.num_layers = c.num_layers;
    r.num_attention_heads = c.num_heads;
    r.num_kv_heads = c.num_kv_heads;
    r.num_experts = c.num_experts;
    r.experts_per_token = c.experts_per_token;
    r.num_shared_experts = c.num_shared_experts;
    r.num_moe_layers = c.num_layers - c.first_dense_layers;
    r.max_position_embeddings = c.max_position_embeddings;
    r.num_parameters = model->impl->num_parameters();
    r.active_parameters = model->impl->active_parameters();
    std::memcpy(info, &r, std::min<size_t>(info->struct_size, sizeof(r)));
  });
}

moe_status moe_forward(moe_model* model, const int32_t* token_ids, const int64_t* seq_lengths, int64_t num_sequences,
                       const moe_forward_options* options, float* logits_out, int64_t logits_capacity) {
  return guarded([&] {
    require_arg(model != nullptr, "moe_forward: model is NULL");
    require_arg(num_sequences >= 1, "moe_forward: num_sequences must be >= 1 (the batch is empty)");
    require_arg(seq_lengths != nullptr, "moe_forward: seq_lengths is NULL");
    require_arg(token_ids != nullptr, "moe_forward: token_ids is NULL");
    require_arg(logits_out != nullptr, "moe_forward: logits_out is NULL");
    moe_forward_options o{};
    moe_forward_options_init(&o);
    moe::api::read_options(options, o, "moe_forward");
    require_arg(o.logits == MOE_LOGITS_ALL || o.logits == MOE_LOGITS_LAST,
                "moe_forward: options->logits must be MOE_LOGITS_ALL or MOE_LOGITS_LAST");
    model->impl->forward(token_ids, seq_lengths, num_sequences, o.logits == MOE_LOGITS_LAST, logits_out,
                         logits_capacity);
  });
}

moe_status moe_generate(moe_model* model, const int32_t* prompt, int64_t prompt_length,
                        const moe_generate_options* options, int32_t* out_ids, int64_t out_capacity,
                        int64_t* out_count) {
  return guarded([&] {
    require_arg(out_count != nullptr, "moe_generate: out_count is NULL");
    *out_count = 0;
    require_arg(model != nullptr, "moe_generate: model is NULL");
    require_arg(prompt != nullptr && prompt_length >= 1, "moe_generate: the prompt is NULL or empty");
    moe_generate_options o{};
    moe::GenerateParams p = generate_params(options, o, out_ids, out_capacity, "moe_generate", "out_capacity");
    if (o.callback) {
      p.on_token = [&](int32_t token, const char* text) { return o.callback(token, text, o.user_data) == 0; };
    }
    auto produced = model->impl->generate(prompt, prompt_length, p);
    if (!produced.empty()) std::memcpy(out_ids, produced.data(), produced.size() * sizeof(int32_t));
    *out_count = static_cast<int64_t>(produced.size());
  });
}

moe_status moe_generate_batch(moe_model* model, const int32_t* prompt_ids, const int64_t* prompt_lengths,
                              int64_t num_rows, const moe_generate_options* options, moe_batch_token_callback callback,
                              void* user_data, int32_t* out_ids, int64_t out_row_capacity, int64_t* out_counts) {
  return guarded([&] {
    require_arg(model != nullptr, "moe_generate_batch: model is NULL");
    if (num_rows < 1)
      moe::fail(MOE_ERR_INVALID_ARGUMENT,
                "moe_generate_batch: num_rows is " + std::to_string(num_rows) + " (there must be at least one prompt)");
    require_arg(prompt_lengths != nullptr, "moe_generate_batch: prompt_lengths is NULL");
    require_arg(prompt_ids != nullptr, "moe_generate_batch: prompt_ids is NULL");
    require_arg(out_counts != nullptr, "moe_generate_batch: out_counts is NULL");
    moe_generate_options o{};
    moe::GenerateParams p =
        generate_params(options, o, out_ids, out_row_capacity, "moe_generate_batch", "out_row_capacity");
    require_arg(o.callback == nullptr,
                "moe_generate_batch: options->callback is set; a batch reports tokens with their row through the "
                "callback argument (moe_batch_token_callback), so leave options->callback NULL");
    moe::RowTokenCallback on_token;
    if (callback) {
      on_token = [&](int64_t row, int32_t token, const char* text) {
        const int32_t answer = callback(row, token, text, user_data);
        return answer == MOE_GENERATE_CONTINUE ? moe::RowAction::kContinue
               : answer == MOE_GENERATE_STOP_ALL ? moe::RowAction::kStopAll
                                                 : moe::RowAction::kStopRow;
      };
    }
    auto produced = model->impl->generate_batch(prompt_ids, prompt_lengths, num_rows, p, on_token);
    for (int64_t r = 0; r < num_rows; ++r) {
      if (!produced[r].empty())
        std::memcpy(out_ids + r * out_row_capacity, produced[r].data(), produced[r].size() * sizeof(int32_t));
      out_counts[r] = static_cast<int64_t>(produced[r].size());
    }
  });
}

}  // extern "C"
