// Model::load and Model::save: a Hugging Face checkpoint directory in, the same layout out.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/json_file.h"
#include "model/model.h"
#include "model/weight_io.h"
#include "text/tokenizer.h"

namespace fs = std::filesystem;

namespace moe {
namespace {

// The weight dtype when the caller leaves it to the checkpoint: bf16 checkpoints stay bf16 (half the
// memory, bf16 compute); everything else (f32, f16, f64) computes in f32.
moe_dtype checkpoint_dtype(const io::Checkpoint& ck) {
  const io::TensorView& embed = ck.tensor("model.embed_tokens.weight");
  return embed.dtype == MOE_DTYPE_BF16 ? MOE_DTYPE_BF16 : MOE_DTYPE_F32;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(MOE_ERR_IO, "cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::unique_ptr<Model> Model::load(std::shared_ptr<Context> context, const std::string& directory,
                                   const LoadOptions& options) {
  io::Checkpoint ck = io::Checkpoint::open(directory);
  std::unique_ptr<Model> m(new Model());
  m->context_ = std::move(context);
  m->source_directory_ = directory;
  m->config_ = parse_model_config(ck.config());
  m->config_json_ = read_text((fs::path(directory) / "config.json").string());
  m->dtype_ = options.dtype ? options.dtype : checkpoint_dtype(ck);
  require(m->dtype_ == MOE_DTYPE_F32 || m->dtype_ == MOE_DTYPE_BF16, MOE_ERR_INVALID_ARGUMENT,
          "load: dtype must be f32 or bf16");

  const ModelConfig& c = m->config_;
  m->max_sequence_length_ = c.max_position_embeddings;
  // Sliding-window attention is not implemented: up to the window, full attention is the same thing.
  if (!ck.config().is_null("sliding_window"))
    m->max_sequence_length_ = std::min(m->max_sequence_length_, ck.config().get_positive_int("sliding_window"));
  if (options.max_sequence_length > 0)
    m->max_sequence_length_ = std::min(m->max_sequence_length_, options.max_sequence_length);
  m->max_batch_tokens_ = options.max_batch_tokens;

  m->weights_ = load_weights(ck, c, m->context_->backend(), m->dtype_);
  m->transformer_ = std::make_unique<Transformer>(c, m->weights_, m->context_->backend());
  ParameterCounts counts = count_parameters(c);
  m->num_parameters_ = counts.total;
  m->active_parameters_ = counts.active;

  const fs::path tokenizer_json = fs::path(directory) / "tokenizer.json";
  if (fs::exists(tokenizer_json)) {
    const fs::path tokenizer_config = fs::path(directory) / "tokenizer_config.json";
    m->tokenizer_ = Tokenizer::load(*m->context_, tokenizer_json.string(),
                                    fs::exists(tokenizer_config) ? tokenizer_config.string() : std::string());
  }
  return m;
}

void Model::save(const std::string& directory) const {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) fail(MOE_ERR_IO, "save: cannot create directory " + directory + ": " + ec.message());
  // config.json as loaded, with the dtype key saying what the weights are now.
  io::Json config = io::parse_json(config_json_, source_directory_ + "/config.json");
  const char* dtype_name = dtype_ == MOE_DTYPE_BF16 ? "bfloat16" : "float32";
  if (config.contains("torch_dtype")) config["torch_dtype"] = dtype_name;
  config["dtype"] = dtype_name;
  io::write_file_atomic((fs::path(directory) / "config.json").string(), config.dump(2) + "\n");
  save_weights(weights_, config_, dtype_, (fs::path(directory) / "model.safetensors").string());
  // A weights index left over from an earlier sharded save would point past the new single file.
  fs::remove(fs::path(directory) / "model.safetensors.index.json", ec);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    fs::path from = fs::path(source_directory_) / name, to = fs::path(directory) / name;
    if (!fs::exists(from) || fs::equivalent(fs::path(source_directory_), fs::path(directory), ec)) continue;
    io::write_file_atomic(to.string(), read_text(from.string()));
  }
}

}  // namespace moe
