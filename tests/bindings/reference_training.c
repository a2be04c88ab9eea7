/* What the binding tests compare their trainers with: training statistics computed through the C API
 * alone, for models created from the mixtral fixture's config.json with a fixed seed.
 *
 *   reference_training CONFIG_JSON PLUGIN_DIR OUT_FILE
 *
 * Every scenario sets many trainer options to values other than their defaults, so that a binding that
 * maps one option wrongly (or not at all) gets other numbers. The bindings' tests repeat the scenarios
 * with the same options and data (see "Scenarios" in docs/BINDINGS.md).
 *
 * The output is text, one record a line: a name, then numbers (%.17g doubles, %.9g floats: both read
 * back exactly).
 *   created_logits  F...   last-token logits of sequence 0 of batch() on the freshly created model
 *   full_step       loss aux_loss grad_norm lr step tokens dropped_fraction   (three lines: three moe_trainer_step)
 *   full_evaluate   loss
 *   train_progress  step loss lr                              (one line per optimizer step of moe_trainer_train)
 *   lora_step       loss grad_norm                            (two lines)
 *   lora_merged_logits F...                                   last-token logits of sequence 0 after merge
 *   classify_step   loss accuracy                             (two lines)
 *   span_step       loss accuracy                             (one line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe/moe.h"

#define VOCAB 320
#define SEED 7
#define BATCH 2
#define SEQ_LEN 8
#define DATASET 6 /* sequences in the train scenario */

static moe_context* ctx;
static const char* config;
static FILE* out;

static void die(const char* what) {
  fprintf(stderr, "reference_training: %s: %s\n", what, moe_last_error_message());
  exit(1);
}

/* Row r, position t of the scenarios' data: (r * 37 + t * 11 + 5) mod VOCAB. */
static void fill_ids(int32_t* ids, int rows) {
  for (int r = 0; r < rows; ++r)
    for (int t = 0; t < SEQ_LEN; ++t) ids[r * SEQ_LEN + t] = (r * 37 + t * 11 + 5) % VOCAB;
}

static moe_model* create(void) {
  moe_model_create_options o;
  moe_model* model = NULL;
  moe_model_create_options_init(&o);
  o.dtype = MOE_LOAD_DTYPE_F32;
  o.seed = SEED;
  if (moe_model_create(ctx, config, &o, &model) != MOE_OK) die("moe_model_create");
  return model;
}

static moe_trainer* trainer_for(moe_model* model, const moe_trainer_options* o) {
  moe_trainer* t = NULL;
  if (moe_trainer_create(model, o, &t) != MOE_OK) die("moe_trainer_create");
  return t;
}

static moe_train_stats stats_struct(void) {
  moe_train_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  return s;
}

/* The last-token logits of sequence 0 of the batch. */
static void write_last_logits(const char* name, moe_model* model, const int32_t* ids) {
  float logits[VOCAB];
  const int64_t length = SEQ_LEN;
  moe_forward_options f;
  moe_forward_options_init(&f);
  f.logits = MOE_LOGITS_LAST;
  if (moe_forward(model, ids, &length, 1, &f, logits, VOCAB) != MOE_OK) die(name);
  fputs(name, out);
  for (int i = 0; i < VOCAB; ++i) fprintf(out, " %.9g", logits[i]);
  fputc('\n', out);
}

/* Full training with most options away from their defaults, freezing included. */
static void full(void) {
  static const int32_t frozen_experts[] = {3};
  static const char* const frozen_patterns[] = {"model\\.norm\\.weight"};
  int32_t ids[BATCH * SEQ_LEN];
  moe_trainer_options o;
  moe_model* model = create();
  moe_trainer* t;
  moe_train_stats s;
  fill_ids(ids, BATCH);
  write_last_logits("created_logits", model, ids);

  moe_trainer_options_init(&o);
  o.lr = 5e-3f;
  o.weight_decay = 0.01f;
  o.beta1 = 0.8f;
  o.beta2 = 0.99f;
  o.eps = 1e-6f;
  o.clip_norm = 0.5f;
  o.warmup_steps = 1;
  o.total_steps = 5;
  o.schedule = MOE_SCHEDULE_COSINE;
  o.min_lr_ratio = 0.1f;
  o.seed = 3;
  o.label_smoothing = 0.05f;
  o.aux_loss_coef = 0.02f;
  o.z_loss_coef = 0.001f;
  o.sequence_balance_coef = 0.001f;
  o.gating = MOE_GATING_GUMBEL;
  o.gumbel_temperature = 2.f;
  o.gumbel_temperature_final = 0.5f;
  o.freeze_layers_below = 1;
  o.freeze_experts = frozen_experts;
  o.num_freeze_experts = 1;
  o.freeze_patterns = frozen_patterns;
  o.num_freeze_patterns = 1;
  o.capacity_factor = 1.f; /* 4 assignments per expert of the 32 a step routes: some are dropped */
  t = trainer_for(model, &o);
  for (int i = 0; i < 3; ++i) {
    s = stats_struct();
    if (moe_trainer_step(t, ids, NULL, BATCH, SEQ_LEN, &s) != MOE_OK) die("moe_trainer_step");
    fprintf(out, "full_step %.17g %.17g %.17g %.17g %lld %lld %.17g\n", s.loss, s.aux_loss, s.grad_norm, s.lr,
            (long long)s.step, (long long)s.tokens, s.dropped_fraction);
  }
  s = stats_struct();
  if (moe_trainer_evaluate(t, ids, NULL, BATCH, SEQ_LEN, &s) != MOE_OK) die("moe_trainer_evaluate");
  fprintf(out, "full_evaluate %.17g\n", s.loss);
  moe_trainer_free(t);
  moe_model_free(model);
}

static int32_t record_progress(const moe_train_stats* s, void* user_data) {
  (void)user_data;
  fprintf(out, "train_progress %lld %.17g %.17g\n", (long long)s->step, s->loss, s->lr);
  return 0;
}

/* moe_trainer_train over a shuffled dataset, with gradient accumulation. */
static void train(void) {
  int32_t ids[DATASET * SEQ_LEN];
  moe_trainer_options o;
  moe_model* model = create();
  moe_trainer* t;
  fill_ids(ids, DATASET);
  moe_trainer_options_init(&o);
  o.lr = 1e-2f;
  o.grad_accumulation = 2;
  o.seed = 5;
  o.ignore_index = 16; /* an id that occurs in the data (row 0, position 1): those labels count for nothing */
  t = trainer_for(model, &o);
  if (moe_trainer_train(t, ids, NULL, DATASET, SEQ_LEN, BATCH, 3, 1, record_progress, NULL) != MOE_OK)
    die("moe_trainer_train");
  moe_trainer_free(t);
  moe_model_free(model);
}

/* LoRA on attention and MLP projections, then merged into the weights. */
static void lora(void) {
  int32_t ids[BATCH * SEQ_LEN];
  moe_trainer_options o;
  moe_model* model = create();
  moe_trainer* t;
  moe_train_stats s;
  fill_ids(ids, BATCH);
  moe_trainer_options_init(&o);
  o.lr = 2e-2f;
  o.seed = 9;
  o.lora_rank = 4;
  o.lora_alpha = 8.f;
  o.lora_attention = 1;
  o.lora_experts = 1;
  t = trainer_for(model, &o);
  for (int i = 0; i < 2; ++i) {
    s = stats_struct();
    if (moe_trainer_step(t, ids, NULL, BATCH, SEQ_LEN, &s) != MOE_OK) die("moe_trainer_step (lora)");
    fprintf(out, "lora_step %.17g %.17g\n", s.loss, s.grad_norm);
  }
  if (moe_trainer_merge_lora(t) != MOE_OK) die("moe_trainer_merge_lora");
  write_last_logits("lora_merged_logits", model, ids);
  moe_trainer_free(t);
  moe_model_free(model);
}

/* The task heads: sequence classification (3 classes) and span extraction. */
static void heads(void) {
  int32_t ids[BATCH * SEQ_LEN];
  const int32_t classes[BATCH] = {2, 0};
  const int32_t spans[BATCH * 2] = {1, 3, 4, 6};
  moe_trainer_options o;
  moe_model* model = create();
  moe_trainer* t;
  moe_train_stats s;
  fill_ids(ids, BATCH);
  moe_trainer_options_init(&o);
  o.lr = 1e-2f;
  o.seed = 4;
  o.task = MOE_TASK_SEQUENCE_CLASSIFICATION;
  o.num_labels = 3;
  t = trainer_for(model, &o);
  for (int i = 0; i < 2; ++i) {
    s = stats_struct();
    if (moe_trainer_step(t, ids, classes, BATCH, SEQ_LEN, &s) != MOE_OK) die("moe_trainer_step (classification)");
    fprintf(out, "classify_step %.17g %.17g\n", s.loss, s.accuracy);
  }
  moe_trainer_free(t);
  moe_model_free(model);

  model = create();
  moe_trainer_options_init(&o);
  o.lr = 1e-2f;
  o.seed = 4;
  o.task = MOE_TASK_SPAN_EXTRACTION;
  t = trainer_for(model, &o);
  s = stats_struct();
  if (moe_trainer_step(t, ids, spans, BATCH, SEQ_LEN, &s) != MOE_OK) die("moe_trainer_step (span)");
  fprintf(out, "span_step %.17g %.17g\n", s.loss, s.accuracy);
  moe_trainer_free(t);
  moe_model_free(model);
}

int main(int argc, char** argv) {
  moe_context_options co;
  const char* plugin_dir;
  if (argc != 4) {
    fprintf(stderr, "usage: reference_training CONFIG_JSON PLUGIN_DIR OUT_FILE\n");
    return 2;
  }
  config = argv[1];
  plugin_dir = argv[2];
  moe_context_options_init(&co);
  co.backend = "cpu";
  co.plugin_dirs = &plugin_dir;
  co.num_plugin_dirs = 1;
  co.search_default_dirs = 0;
  if (moe_context_create(&co, &ctx) != MOE_OK) die("moe_context_create");
  out = fopen(argv[3], "w");
  if (!out) {
    perror(argv[3]);
    return 1;
  }
  full();
  train();
  lora();
  heads();
  if (fclose(out) != 0) {
    perror(argv[3]);
    return 1;
  }
  moe_context_free(ctx);
  return 0;
}
