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
#include "tensor/ops.h"
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

void Model::finish_setup(const LoadOptions& options, int64_t sliding_window) {
  const ModelConfig& c = config_;
  max_sequence_length_ = c.max_position_embeddings;
  // Sliding-window attention is not implemented: up to the window, full attention is the same thing.
  if (sliding_window > 0) max_sequence_length_ = std::min(max_sequence_length_, sliding_window);
  if (options.max_sequence_length > 0) max_sequence_length_ = std::min(max_sequence_length_, options.max_sequence_length);
  max_batch_tokens_ = options.max_batch_tokens;
  fuse_qkv();
  transformer_ = std::make_unique<Transformer>(c, weights_, context_->backend());
  ParameterCounts counts = count_parameters(c);
  num_parameters_ = counts.total;
  active_parameters_ = counts.active;
  if (!tokenizer_json_.empty()) {
    const fs::path config = fs::path(tokenizer_json_).parent_path() / "tokenizer_config.json";
    tokenizer_ = Tokenizer::load(*context_, tokenizer_json_, fs::exists(config) ? config.string() : std::string());
  }
}

void Model::fuse_qkv() {
  if (config_.arch != Architecture::kMixtral) return;
  Backend& be = context_->backend();
  for (LayerWeights& layer : weights_.layers) {
    AttentionWeights& w = layer.attn;
    const int64_t q = w.q_proj.dim(0), k = w.k_proj.dim(0), v = w.v_proj.dim(0);
    Tensor qkv = Tensor::empty(be, w.q_proj.dtype(), {q + k + v, w.q_proj.dim(1)}, Lifetime::kPersistent);
    Tensor q_rows = qkv.slice(0, q), k_rows = qkv.slice(q, q + k), v_rows = qkv.slice(q + k, q + k + v);
    ops::copy(w.q_proj, q_rows);
    ops::copy(w.k_proj, k_rows);
    ops::copy(w.v_proj, v_rows);
    w.q_proj = q_rows;
    w.k_proj = k_rows;
    w.v_proj = v_rows;
    w.qkv = qkv;
  }
}

std::unique_ptr<Model> Model::load(std::shared_ptr<Context> context, const std::string& directory,
                                   const LoadOptions& options) {
  io::Checkpoint ck = io::Checkpoint::open(directory);
  std::unique_ptr<Model> m(new Model());
  m->context_ = std::move(context);
  m->config_ = parse_model_config(ck.config());
  m->config_json_ = read_text((fs::path(directory) / "config.json").string());
  m->dtype_ = options.dtype ? options.dtype : checkpoint_dtype(ck);
  require(m->dtype_ == MOE_DTYPE_F32 || m->dtype_ == MOE_DTYPE_BF16, MOE_ERR_INVALID_ARGUMENT,
          "load: dtype must be f32 or bf16");
  m->weights_ = load_weights(ck, m->config_, m->context_->backend(), m->dtype_);
  const fs::path tokenizer = fs::path(directory) / "tokenizer.json";
  if (fs::exists(tokenizer)) m->tokenizer_json_ = tokenizer.string();
  m->finish_setup(options, ck.config().is_null("sliding_window") ? 0 : ck.config().get_positive_int("sliding_window"));
  return m;
}

std::unique_ptr<Model> Model::create(std::shared_ptr<Context> context, const std::string& config_path, moe_dtype dtype,
                                     uint64_t seed, const std::string& tokenizer_json) {
  io::ConfigReader config = io::ConfigReader::from_file(config_path);
  std::unique_ptr<Model> m(new Model());
  m->context_ = std::move(context);
  m->config_ = parse_model_config(config);
  m->config_json_ = read_text(config_path);
  m->dtype_ = dtype ? dtype : MOE_DTYPE_F32;
  require(m->dtype_ == MOE_DTYPE_F32 || m->dtype_ == MOE_DTYPE_BF16, MOE_ERR_INVALID_ARGUMENT,
          "create: dtype must be f32 or bf16");
  if (!tokenizer_json.empty() && !fs::exists(tokenizer_json))
    fail(MOE_ERR_NOT_FOUND, "create: tokenizer file " + tokenizer_json + " does not exist");
  m->tokenizer_json_ = tokenizer_json;
  m->weights_ = random_weights(m->config_, m->context_->backend(), m->dtype_, seed,
                               config.get_float_or("initializer_range", 0.02));
  m->finish_setup(LoadOptions{}, config.is_null("sliding_window") ? 0 : config.get_positive_int("sliding_window"));
  return m;
}

void Model::save(const std::string& directory) const {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) fail(MOE_ERR_IO, "save: cannot create directory " + directory + ": " + ec.message());
  // config.json as loaded, with the dtype key saying what the weights are now.
  io::Json config = io::parse_json(config_json_, "the model's config.json");
  const char* dtype_name = dtype_ == MOE_DTYPE_BF16 ? "bfloat16" : "float32";
  if (config.contains("torch_dtype")) config["torch_dtype"] = dtype_name;
  config["dtype"] = dtype_name;
  io::write_file_atomic((fs::path(directory) / "config.json").string(), config.dump(2) + "\n");
  save_weights(weights_, config_, dtype_, (fs::path(directory) / "model.safetensors").string());
  // A weights index left over from an earlier sharded save would point past the new single file.
  fs::remove(fs::path(directory) / "model.safetensors.index.json", ec);
  if (tokenizer_json_.empty()) return;
  const fs::path source = fs::path(tokenizer_json_).parent_path();
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::path from = name == std::string("tokenizer.json") ? fs::path(tokenizer_json_) : source / name;
    fs::path to = fs::path(directory) / name;
    if (!fs::exists(from) || (fs::exists(to) && fs::equivalent(from, to, ec))) continue;
    io::write_file_atomic(to.string(), read_text(from.string()));
  }
}

}  // namespace moe
