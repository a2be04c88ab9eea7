/* MoE SDK public C ABI: the only header an application needs.
 *
 * Rules (see docs/ABI.md):
 * - Objects are opaque handles with *_create / *_free (or *_load / *_free) pairs; *_free accepts NULL.
 * - Every fallible function returns moe_status (MOE_OK = 0). On failure, moe_last_error_message()
 *   gives a human-readable reason for the calling thread that names the argument, file or tensor at
 *   fault. No exception or abort crosses this boundary.
 * - Options structs start with uint32_t struct_size and are filled with defaults by
 *   moe_<thing>_options_init() (an inline wrapper passing sizeof as this header declares it). Fields
 *   are only ever appended; the library reads and writes only the fields the caller's struct_size
 *   covers, so a program built against an older header keeps working with a newer library.
 * - Pointers the caller passes in are not kept past the call unless stated. Strings the library
 *   returns stay valid as long as the object they came from (or, for moe_last_error_message, until
 *   the thread's next call into the library).
 * - A loaded model is read-only during inference: several threads may call moe_forward and
 *   moe_generate on one model at once.
 */
#ifndef MOE_H
#define MOE_H

#include <stddef.h>
#include <stdint.h>

#include "moe/moe_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_VERSION_MAJOR 0
#define MOE_VERSION_MINOR 1
#define MOE_VERSION_PATCH 0

#if defined(_WIN32)
#define MOE_API __declspec(dllimport)
#else
#define MOE_API __attribute__((visibility("default")))
#endif

/* ---- version and errors ---- */

/* "MAJOR.MINOR.PATCH" of the library actually loaded (compare with MOE_VERSION_* of the header). */
MOE_API const char* moe_version(void);
/* The fixed name of a status code ("MOE_ERR_FORMAT"); "unknown status" for other values. */
MOE_API const char* moe_status_string(moe_status status);
/* The calling thread's last error message ("" if none). */
MOE_API const char* moe_last_error_message(void);

/* ---- context: backend choice, threads, plugins ---- */

typedef struct moe_context moe_context;

/* Receives log lines (plugin discovery, rejections, warnings) when set. */
typedef void (*moe_log_callback)(int32_t level, const char* message, void* user_data);

typedef struct moe_context_options {
  uint32_t struct_size;
  const char* backend;             /* "cpu", "cuda" or "auto" (default: "auto", the highest score) */
  int32_t num_threads;             /* CPU threads; 0 = one per core (default) */
  const char* const* plugin_dirs;  /* searched first, before MOE_PLUGIN_PATH and <libdir>/moe/plugins */
  int32_t num_plugin_dirs;
  int32_t log_level;               /* MOE_LOG_*: lines at or below this level reach log_callback */
  moe_log_callback log_callback;   /* NULL: warnings and errors go to stderr */
  void* log_user_data;
  int32_t device;                  /* GPU ordinal for GPU backends (default 0) */
  int32_t search_default_dirs;     /* 1 (default): after plugin_dirs, also search MOE_PLUGIN_PATH and
                                      <libdir>/moe/plugins; 0: plugin_dirs only */
} moe_context_options;

/* Fills *options with defaults and sets struct_size to the size this header declares. */
MOE_API void moe_context_options_init_sized(moe_context_options* options, uint32_t struct_size);
static inline void moe_context_options_init(moe_context_options* options) {
  moe_context_options_init_sized(options, (uint32_t)sizeof(moe_context_options));
}
/* Discovers plugins and creates the chosen backend. MOE_ERR_PLUGIN when no backend can run, with
 * every candidate and why it was refused in the message. options may be NULL (defaults). */
MOE_API moe_status moe_context_create(const moe_context_options* options, moe_context** out);
MOE_API void moe_context_free(moe_context* ctx);
/* Name of the backend the context runs on ("cpu", "cuda") and a description of its device. */
MOE_API const char* moe_context_backend(const moe_context* ctx);
MOE_API const char* moe_context_device(const moe_context* ctx);

/* What plugin discovery found: one entry per candidate library. */
#define MOE_PLUGIN_STATE_LOADED 0   /* loaded and usable */
#define MOE_PLUGIN_STATE_REJECTED 1 /* refused: see reason */
#define MOE_PLUGIN_STATE_UNUSABLE 2 /* loaded, but its score says it cannot run here */

typedef struct moe_plugin_info {
  uint32_t struct_size;
  const char* path;    /* the library file */
  const char* name;    /* the plugin's name ("" if it was rejected before giving one) */
  const char* version; /* the plugin's version ("" if unknown) */
  int32_t kind;        /* 1 = backend, 2 = modality, 0 = unknown */
  int32_t state;       /* MOE_PLUGIN_STATE_* */
  int32_t score;       /* the plugin's score (0 if not loaded) */
  uint32_t abi_version;/* the plugin's ABI version (0 if unknown) */
  const char* reason;  /* why it was rejected or unusable ("" if loaded) */
} moe_plugin_info;

MOE_API moe_status moe_plugins_count(const moe_context* ctx, int32_t* count);
/* Fills info (whose struct_size the caller sets) for candidate `index`; strings live as long as ctx. */
MOE_API moe_status moe_plugins_get(const moe_context* ctx, int32_t index, moe_plugin_info* info);

/* ---- models ---- */

typedef struct moe_model moe_model;

#define MOE_LOAD_DTYPE_AUTO 0 /* keep the checkpoint's floating dtype (f32 or bf16; f16 becomes f32) */
#define MOE_LOAD_DTYPE_F32 MOE_DTYPE_F32
#define MOE_LOAD_DTYPE_BF16 MOE_DTYPE_BF16

typedef struct moe_model_load_options {
  uint32_t struct_size;
  moe_dtype dtype;          /* MOE_LOAD_DTYPE_*: weight dtype in memory (default AUTO) */
  int64_t max_sequence_length; /* cap on tokens per sequence; 0 = the config's max_position_embeddings */
  int64_t max_batch_tokens;    /* cap on tokens in one forward call; 0 = 65536 */
} moe_model_load_options;

/* Fills *options with defaults and sets struct_size to the size this header declares. */
MOE_API void moe_model_load_options_init_sized(moe_model_load_options* options, uint32_t struct_size);
static inline void moe_model_load_options_init(moe_model_load_options* options) {
  moe_model_load_options_init_sized(options, (uint32_t)sizeof(moe_model_load_options));
}
/* Loads a Hugging Face checkpoint directory: config.json plus model.safetensors or a sharded
 * model.safetensors.index.json; a tokenizer.json beside them becomes the model's tokenizer. */
MOE_API moe_status moe_model_load(moe_context* ctx, const char* directory, const moe_model_load_options* options,
                                  moe_model** out);
typedef struct moe_model_create_options {
  uint32_t struct_size;
  moe_dtype dtype;            /* MOE_LOAD_DTYPE_F32 (default) or _BF16 */
  uint64_t seed;              /* weights ~ N(0, initializer_range) from this seed; norms 1 */
  const char* tokenizer_json; /* optional tokenizer.json the model keeps (and saves) */
} moe_model_create_options;

MOE_API void moe_model_create_options_init_sized(moe_model_create_options* options, uint32_t struct_size);
static inline void moe_model_create_options_init(moe_model_create_options* options) {
  moe_model_create_options_init_sized(options, (uint32_t)sizeof(moe_model_create_options));
}
/* A new model from a Hugging Face config.json (the file), with random weights drawn as transformers
 * initialises them (normal with std = initializer_range, default 0.02; RMSNorm weights 1). */
MOE_API moe_status moe_model_create(moe_context* ctx, const char* config_json_path, const moe_model_create_options* options,
                                    moe_model** out);
/* Writes config.json and model.safetensors (Hugging Face names and layout) into directory, atomically
 * per file (temporary file + rename). The directory is created if needed. */
MOE_API moe_status moe_model_save(const moe_model* model, const char* directory);
MOE_API void moe_model_free(moe_model* model);

typedef struct moe_model_info {
  uint32_t struct_size;
  const char* architecture;      /* config.json's model_type: "mixtral", "deepseek_v3" */
  moe_dtype dtype;               /* weight dtype in memory */
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t num_attention_heads;
  int64_t num_kv_heads;
  int64_t num_experts;           /* routed experts per MoE layer */
  int64_t experts_per_token;
  int64_t num_shared_experts;
  int64_t num_moe_layers;
  int64_t max_position_embeddings;
  int64_t num_parameters;        /* every weight */
  int64_t active_parameters;     /* weights one token's forward pass touches */
} moe_model_info;

MOE_API moe_status moe_model_describe(const moe_model* model, moe_model_info* info);

/* ---- inference ---- */

#define MOE_LOGITS_ALL 0  /* logits for every token: [total_tokens, vocab] */
#define MOE_LOGITS_LAST 1 /* logits for the last token of each sequence: [num_sequences, vocab] */

typedef struct moe_forward_options {
  uint32_t struct_size;
  int32_t logits; /* MOE_LOGITS_* (default ALL) */
} moe_forward_options;

/* Fills *options with defaults and sets struct_size to the size this header declares. */
MOE_API void moe_forward_options_init_sized(moe_forward_options* options, uint32_t struct_size);
static inline void moe_forward_options_init(moe_forward_options* options) {
  moe_forward_options_init_sized(options, (uint32_t)sizeof(moe_forward_options));
}
/* Runs a batch of sequences of different lengths, packed: sequence i is the seq_lengths[i] ids that
 * follow those of sequence i-1 in token_ids. Each sequence is computed as if it were alone (no
 * padding reaches any result). Writes f32 logits into logits_out, packed the same way; logits_capacity
 * is the number of floats logits_out holds (MOE_ERR_INVALID_ARGUMENT, naming the size needed, when too
 * small). */
MOE_API moe_status moe_forward(moe_model* model, const int32_t* token_ids, const int64_t* seq_lengths,
                               int64_t num_sequences, const moe_forward_options* options, float* logits_out,
                               int64_t logits_capacity);

/* Called after each generated token; return non-zero to stop generation (the token is kept).
 * text is the newly completed UTF-8 text for that token (NULL when the model has no tokenizer). */
typedef int32_t (*moe_token_callback)(int32_t token_id, const char* text, void* user_data);

typedef struct moe_generate_options {
  uint32_t struct_size;
  int32_t max_new_tokens;   /* default 64 */
  float temperature;        /* 0 = greedy (default) */
  int32_t top_k;            /* 0 = off */
  float top_p;              /* 1 = off (default) */
  uint64_t seed;            /* sampling seed (default 0): the same seed gives the same tokens */
  const int32_t* stop_ids;  /* generation ends after producing one of these */
  int32_t num_stop_ids;
  moe_token_callback callback;
  void* user_data;
} moe_generate_options;

/* Fills *options with defaults and sets struct_size to the size this header declares. */
MOE_API void moe_generate_options_init_sized(moe_generate_options* options, uint32_t struct_size);
static inline void moe_generate_options_init(moe_generate_options* options) {
  moe_generate_options_init_sized(options, (uint32_t)sizeof(moe_generate_options));
}
/* Generates up to max_new_tokens after prompt with a KV cache. Writes the new ids (not the prompt)
 * to out_ids (capacity out_capacity) and their count to *out_count. A callback that stops early is
 * not an error. */
MOE_API moe_status moe_generate(moe_model* model, const int32_t* prompt, int64_t prompt_length,
                                const moe_generate_options* options, int32_t* out_ids, int64_t out_capacity,
                                int64_t* out_count);

/* What a moe_batch_token_callback returns. */
#define MOE_GENERATE_CONTINUE 0 /* the row goes on */
#define MOE_GENERATE_STOP_ROW 1 /* the row ends (its token is kept); the other rows go on */
#define MOE_GENERATE_STOP_ALL 2 /* every row ends now (this token is kept) */

/* Called after each token a row of moe_generate_batch produces, with the row's index (0-based, in the
 * order of the prompts); returns MOE_GENERATE_* (any other value ends the row, like STOP_ROW). text is
 * as in moe_token_callback (each row has its own text stream). Tokens come step by step, rows in
 * increasing order within a step; after STOP_ALL the rows after this one get no token in this step. */
typedef int32_t (*moe_batch_token_callback)(int64_t row, int32_t token_id, const char* text, void* user_data);

/* Generates for num_rows prompts at once: row r's prompt is the prompt_lengths[r] ids that follow
 * row r-1's in prompt_ids (packed as moe_forward takes them). All prompts run through one forward,
 * then each decode step runs the next token of every unfinished row through one forward, so a batch
 * reads the weights once per step for all its rows. options (NULL: defaults) apply to every row:
 * a row ends after max_new_tokens tokens, after a stop id (kept), or when callback says so; a finished
 * row costs nothing more. Sampling: row r draws from its own generator seeded with options->seed + r,
 * so its tokens are what moe_generate on that prompt alone with seed + r gives (greedy rows: what
 * moe_generate gives), up to the last-bit differences a batch may make in the logits. options->callback
 * must be NULL (it has no row): pass callback and user_data here instead (callback may be NULL).
 * Row r's new ids (not its prompt) go to out_ids[r * out_row_capacity ...] and their count to
 * out_counts[r] (num_rows entries); out_row_capacity must be >= max_new_tokens. out_counts is written
 * only when the call succeeds. Errors: no rows, an empty prompt, an id outside the vocabulary (naming
 * the row and index) or a capacity below max_new_tokens: MOE_ERR_INVALID_ARGUMENT; a prompt +
 * max_new_tokens over the maximum sequence length, or prompts of more than max_batch_tokens ids
 * together, or a KV cache of num_rows x (longest prompt + max_new_tokens) positions over
 * max_batch_tokens (the model's load options): MOE_ERR_LIMIT. */
MOE_API moe_status moe_generate_batch(moe_model* model, const int32_t* prompt_ids, const int64_t* prompt_lengths,
                                      int64_t num_rows, const moe_generate_options* options,
                                      moe_batch_token_callback callback, void* user_data, int32_t* out_ids,
                                      int64_t out_row_capacity, int64_t* out_counts);

/* ---- text ---- */

typedef struct moe_tokenizer moe_tokenizer;

/* Loads a tokenizer.json (and, if config_path is non-NULL, a tokenizer_config.json) through the text
 * modality plugin. */
MOE_API moe_status moe_tokenizer_load(moe_context* ctx, const char* tokenizer_json_path, const char* config_path,
                                      moe_tokenizer** out);
/* The tokenizer a model directory came with; MOE_ERR_NOT_FOUND if it had none. Owned by the model. */
MOE_API moe_status moe_model_tokenizer(const moe_model* model, const moe_tokenizer** out);
MOE_API void moe_tokenizer_free(moe_tokenizer* tok);

/* Encodes UTF-8 text. With ids_out NULL (or too small) only *count is set, to the number of ids
 * needed; call again with a large enough buffer. add_special applies BOS/EOS post-processing. */
MOE_API moe_status moe_tokenize(const moe_tokenizer* tok, const char* text, size_t text_length, int32_t add_special,
                                int32_t* ids_out, int64_t ids_capacity, int64_t* count);
/* Decodes ids to UTF-8. With text_out NULL (or too small) only *length is set (bytes, without the
 * terminating NUL); otherwise text_out receives the text and a NUL. */
MOE_API moe_status moe_detokenize(const moe_tokenizer* tok, const int32_t* ids, int64_t count, int32_t skip_special,
                                  char* text_out, size_t text_capacity, size_t* length);

/* ---- training and fine-tuning ----
 * A trainer updates its model's weights in place: no inference may run on that model meanwhile.
 * Full training needs f32 weights (load with MOE_LOAD_DTYPE_F32); LoRA also works on bf16 weights. */

typedef struct moe_trainer moe_trainer;

#define MOE_SCHEDULE_CONSTANT 0
#define MOE_SCHEDULE_COSINE 1 /* linear warmup, then cosine decay to lr * min_lr_ratio at total_steps */
#define MOE_GATING_TOPK 0     /* the model's own routing */
#define MOE_GATING_GUMBEL 1   /* experts chosen from (logits + Gumbel noise) / temperature (the seed's gating) */
#define MOE_NAN_SKIP_STEP 0   /* a non-finite loss or gradient skips the update (reported in the stats) */
#define MOE_NAN_STOP 1        /* ... or fails the call */
/* Tasks and what `labels` holds for a batch of `batch` sequences of `seq_len` ids: */
#define MOE_TASK_CAUSAL_LM 0                /* [batch, seq_len] next-token labels (NULL: the ids), -100 ignored */
#define MOE_TASK_SEQUENCE_CLASSIFICATION 1  /* [batch] classes, read at each sequence's last token (head "score") */
#define MOE_TASK_SPAN_EXTRACTION 2          /* [batch, 2] start and end token of the answer (head "qa_outputs") */

typedef struct moe_trainer_options {
  uint32_t struct_size;
  float lr;                   /* default 1e-3 */
  float weight_decay;         /* AdamW's decoupled weight decay (default 0) */
  float beta1, beta2, eps;    /* defaults 0.9, 0.999, 1e-8 */
  float clip_norm;            /* global gradient-norm clipping; 0 = off (default) */
  int64_t warmup_steps;       /* linear warmup (default 0) */
  int64_t total_steps;        /* the cosine schedule's length */
  int32_t schedule;           /* MOE_SCHEDULE_* (default constant) */
  float min_lr_ratio;         /* cosine floor as a fraction of lr (default 0) */
  int32_t grad_accumulation;  /* micro-batches per optimizer step (default 1) */
  uint64_t seed;              /* data order, Gumbel noise, LoRA initialisation */
  float label_smoothing;
  int32_t ignore_index;       /* labels equal to this count for nothing (default -100) */
  float aux_loss_coef;        /* Switch/Mixtral load-balancing loss */
  float z_loss_coef;          /* router z-loss */
  float sequence_balance_coef;/* DeepSeek-V3 sequence-wise balance loss */
  float bias_update_speed;    /* auxiliary-loss-free balancing: gamma (deepseek_v3 only) */
  int32_t gating;             /* MOE_GATING_* */
  float gumbel_temperature, gumbel_temperature_final; /* annealed linearly over total_steps (default 1, 1) */
  int32_t nan_policy;         /* MOE_NAN_* */
  int64_t freeze_layers_below;/* layers [0, n) and the embedding stay fixed */
  const int32_t* freeze_experts; int32_t num_freeze_experts; /* routed experts that stay fixed */
  const char* const* freeze_patterns; int32_t num_freeze_patterns; /* regexes over transformers' weight names */
  int32_t lora_rank;          /* > 0: train LoRA adapters instead of the weights */
  float lora_alpha;           /* default 16 */
  int32_t lora_attention;     /* adapters on attention projections (default 1) */
  int32_t lora_experts;       /* adapters on MLP projections: dense, shared experts and each routed expert (default 0) */
  int32_t task;               /* MOE_TASK_* (default causal LM) */
  int32_t num_labels;         /* classes of MOE_TASK_SEQUENCE_CLASSIFICATION */
  /* Expert capacity (Switch Transformer): > 0 lets each routed expert of an MoE layer keep at most
   * ceil(capacity_factor * tokens * top_k / experts) of a micro-batch's assignments, taken in token order;
   * a later one is dropped (it adds nothing and sends no gradient to the router; the token keeps its
   * residual and its other experts). Applies to steps and evaluation, never to inference. 0 = dropless (default). */
  float capacity_factor;
} moe_trainer_options;

typedef struct moe_train_stats {
  uint32_t struct_size;
  double loss;         /* language-model loss, mean over labelled tokens */
  double aux_loss;     /* auxiliary router losses, coefficients applied */
  double grad_norm;    /* before clipping (0 until an optimizer step happens) */
  double lr;           /* learning rate of the step */
  int64_t tokens;      /* labelled tokens in the batch */
  int64_t step;        /* optimizer steps so far */
  int32_t skipped;     /* 1: a non-finite value skipped the update */
  double expert_balance; /* max over mean assignments per expert, averaged over MoE layers (1 = perfect) */
  double accuracy;     /* classification and span tasks: share of sequences predicted exactly */
  double dropped_fraction; /* share of routed assignments dropped for expert capacity (0 when dropless) */
} moe_train_stats;

MOE_API void moe_trainer_options_init_sized(moe_trainer_options* options, uint32_t struct_size);
static inline void moe_trainer_options_init(moe_trainer_options* options) {
  moe_trainer_options_init_sized(options, (uint32_t)sizeof(moe_trainer_options));
}
MOE_API moe_status moe_trainer_create(moe_model* model, const moe_trainer_options* options, moe_trainer** out);
MOE_API void moe_trainer_free(moe_trainer* trainer);
/* One micro-batch: `batch` sequences of `seq_len` ids, row-major, and labels as the task says
 * (MOE_TASK_*; for the causal LM the logits at position t are scored against the label at t + 1). */
MOE_API moe_status moe_trainer_step(moe_trainer* trainer, const int32_t* ids, const int32_t* labels, int64_t batch,
                                    int64_t seq_len, moe_train_stats* stats);
/* The loss of a batch without gradients or updates. */
MOE_API moe_status moe_trainer_evaluate(moe_trainer* trainer, const int32_t* ids, const int32_t* labels, int64_t batch,
                                        int64_t seq_len, moe_train_stats* stats);

/* Called after each optimizer step of moe_trainer_train; return non-zero to stop (MOE_ERR_CANCELLED). */
typedef int32_t (*moe_train_progress)(const moe_train_stats* stats, void* user_data);
/* Trains until the trainer has taken `until_step` optimizer steps, on batches of batch_size sequences drawn
 * from a dataset of num_sequences x seq_len ids (and their labels as the task says, or NULL for the causal
 * LM): in order, or shuffled per epoch from the trainer's seed, so the batch of a given step is the same
 * however the run is split. */
MOE_API moe_status moe_trainer_train(moe_trainer* trainer, const int32_t* ids, const int32_t* labels,
                                     int64_t num_sequences, int64_t seq_len, int64_t batch_size, int64_t until_step,
                                     int32_t shuffle, moe_train_progress progress, void* user_data);
/* A checkpoint directory: the model as moe_model_save writes it plus the optimizer state. */
MOE_API moe_status moe_trainer_save(const moe_trainer* trainer, const char* directory);
/* Continues from a checkpoint: the trainer's model must have been loaded from `directory` and the
 * options must match; the run then continues exactly as if it had not stopped. */
MOE_API moe_status moe_trainer_resume(moe_trainer* trainer, const char* directory);
/* Adds the LoRA adapters into their weights (f32 weights only) and stops training them. */
MOE_API moe_status moe_trainer_merge_lora(moe_trainer* trainer);
/* Tokens the routers assigned to each routed expert during training steps (the routers' choices, before
 * any capacity drop; a token counts once for each of its top_k experts), summed since training began
 * (carried over by save and resume). *num_layers and *num_experts (each may be NULL) receive the sizes; when
 * counts is not NULL it receives [num_layers, num_experts] row-major (capacity >= num_layers * num_experts, else
 * MOE_ERR_INVALID_ARGUMENT), and layers, when not NULL, num_layers model layer indices (the row's layer). */
MOE_API moe_status moe_trainer_expert_load(const moe_trainer* trainer, int64_t* counts, int64_t capacity, int32_t* layers,
                                           int64_t* num_layers, int64_t* num_experts);

#ifdef __cplusplus
}
#endif

#endif /* MOE_H */
