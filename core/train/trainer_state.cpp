// Trainer checkpoints: save, resume, and merging LoRA adapters into their weights.
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "tensor/ops.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace moe {
namespace {

constexpr const char* kStateTensors = "trainer_state.safetensors";
constexpr const char* kStateJson = "trainer_state.json";

}  // namespace

void Trainer::save(const std::string& directory) const {
  model_.save(directory);
  // Every tensor of the state, copied to the host for the writer.
  std::vector<std::vector<float>> host;
  std::vector<io::TensorToWrite> tensors;
  auto add = [&](const std::string& name, const Tensor& t) {
    host.push_back(t.to_vector<float>());
    tensors.push_back({name, MOE_DTYPE_F32, t.shape(), host.back().data()});
  };
  auto owned = const_cast<Trainer*>(this)->owned_parameters();
  host.reserve(params_.size() * 2 + owned.size() * 3);
  for (const auto& p : params_) {
    add("exp_avg." + p->name, p->m);
    add("exp_avg_sq." + p->name, p->v);
  }
  for (const Param* p : owned) {
    add(p->name, p->value);
    add("exp_avg." + p->name, p->m);
    add("exp_avg_sq." + p->name, p->v);
  }
  io::write_safetensors((fs::path(directory) / kStateTensors).string(), tensors, {{"format", "moesdk-trainer"}});
  std::ostringstream rng;
  rng << rng_;
  io::Json state = {{"step", step_}, {"micro_step", micro_}, {"rng", rng.str()}, {"lora_adapters", lora_.size()},
                    {"trained_tensors", params_.size()}, {"owned_tensors", owned.size()},
                    {"expert_load", expert_load_total_}};
  io::write_file_atomic((fs::path(directory) / kStateJson).string(), state.dump(2) + "\n");
}

void Trainer::resume(const std::string& directory) {
  const std::string json_path = (fs::path(directory) / kStateJson).string();
  io::Json state = io::read_json_file(json_path);
  auto get = [&](const char* key) -> const io::Json& {
    if (!state.contains(key)) fail(MOE_ERR_FORMAT, json_path + ": key '" + key + "' is missing");
    return state[key];
  };
  if (get("lora_adapters").get<size_t>() != lora_.size() || get("trained_tensors").get<size_t>() != params_.size())
    fail(MOE_ERR_INVALID_ARGUMENT, json_path + ": the checkpoint was saved by a trainer with other options (" +
                                       std::to_string(get("trained_tensors").get<size_t>()) + " trained tensors, " +
                                       std::to_string(get("lora_adapters").get<size_t>()) + " LoRA adapters; this one has " +
                                       std::to_string(params_.size()) + " and " + std::to_string(lora_.size()) + ")");
  auto file = io::SafetensorsFile::open((fs::path(directory) / kStateTensors).string());
  auto load = [&](const std::string& name, Tensor& into) {
    const io::TensorView* v = file->find(name);
    if (!v) fail(MOE_ERR_NOT_FOUND, file->path() + ": tensor '" + name + "' not found");
    if (v->dtype != MOE_DTYPE_F32 || v->shape != into.shape())
      fail(MOE_ERR_FORMAT, file->path() + ": tensor '" + name + "' has shape " + shape_string(v->shape) + ", expected " +
                               shape_string(into.shape()));
    into.copy_from_host(v->data, v->nbytes);
  };
  for (auto& p : params_) {
    load("exp_avg." + p->name, p->m);
    load("exp_avg_sq." + p->name, p->v);
  }
  auto owned = owned_parameters();
  if (get("owned_tensors").get<size_t>() != owned.size())
    fail(MOE_ERR_INVALID_ARGUMENT, json_path + ": the checkpoint has " + std::to_string(get("owned_tensors").get<size_t>()) +
                                       " adapter and head tensors, this trainer " + std::to_string(owned.size()));
  for (Param* p : owned) {
    load(p->name, p->value);
    load("exp_avg." + p->name, p->m);
    load("exp_avg_sq." + p->name, p->v);
  }
  // Checkpoints from before the expert load was recorded lack the key: the count starts afresh.
  expert_load_total_.clear();
  if (state.contains("expert_load")) {
    try {
      expert_load_total_ = state["expert_load"].get<std::vector<std::vector<int64_t>>>();
    } catch (const std::exception&) {
      fail(MOE_ERR_FORMAT, json_path + ": key 'expert_load' is not a list of lists of counts");
    }
    const size_t layers = moe_layers().size();
    bool fits = expert_load_total_.size() == layers;
    for (const auto& row : expert_load_total_) fits = fits && static_cast<int64_t>(row.size()) == model_.config().num_experts;
    if (!fits)
      fail(MOE_ERR_FORMAT, json_path + ": key 'expert_load' does not hold " + std::to_string(layers) + " rows of " +
                               std::to_string(model_.config().num_experts) + " experts");
  }
  step_ = get("step").get<int64_t>();
  micro_ = get("micro_step").get<int32_t>();
  std::istringstream rng(get("rng").get<std::string>());
  rng >> rng_;
  if (!rng) fail(MOE_ERR_FORMAT, json_path + ": key 'rng' does not hold a generator state");
}

void Trainer::merge_lora() {
  for (auto& l : lora_) {
    if (l->weight.dtype() != MOE_DTYPE_F32)
      fail(MOE_ERR_UNSUPPORTED, "merging LoRA into '" + l->a.name + "' needs f32 base weights (load the model as f32)");
    // W += scale * B . A, per routed expert for a stacked adapter.
    const bool stacked = l->weight.ndim() == 3;
    const int64_t n = stacked ? l->weight.dim(0) : 1, out = l->weight.dim(-2), in = l->weight.dim(-1),
                  rank = l->a.value.dim(-2);
    auto part = [stacked](const Tensor& t, int64_t i, int64_t rows, int64_t cols) {
      return (stacked ? t.slice(i, i + 1) : t).view({rows, cols});
    };
    for (int64_t i = 0; i < n; ++i) {
      Tensor w = part(l->weight, i, out, in);
      ops::gemm(part(l->b.value, i, out, rank), part(l->a.value, i, rank, in), false, false, w, l->scale, 1.f);
    }
  }
  lora_.clear();
}

}  // namespace moe
