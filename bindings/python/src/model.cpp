#include "model.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "token_ids.h"
#include "token_stream.h"
#include "tokenizer.h"

namespace py = pybind11;

namespace moesdk {
namespace {


const char* dtype_name(moe_dtype dtype) {
  switch (dtype) {
    case MOE_DTYPE_F32: return "f32";
    case MOE_DTYPE_BF16: return "bf16";
    case MOE_DTYPE_F16: return "f16";
    default: return "unknown";
  }
}

moe_dtype load_dtype(const std::string& name) {
  if (name == "auto") return MOE_LOAD_DTYPE_AUTO;
  if (name == "f32") return MOE_LOAD_DTYPE_F32;
  if (name == "bf16") return MOE_LOAD_DTYPE_BF16;
  throw py::value_error("dtype must be \"auto\", \"f32\" or \"bf16\", not \"" + name + "\"");
}

struct ModelInfo {
  std::string architecture, dtype;
  int64_t vocab_size, hidden_size, num_layers, num_attention_heads, num_kv_heads, num_experts, experts_per_token,
      num_shared_experts, num_moe_layers, max_position_embeddings, num_parameters, active_parameters;
};

moe_model_info describe_raw(moe_model* model) {
  moe_model_info info{};
  info.struct_size = sizeof info;
  check(moe_model_describe(model, &info));
  return info;
}

ModelInfo describe(const Model& model) {
  auto use = model.handle.use();
  auto i = describe_raw(use.get());
  return {i.architecture,       dtype_name(i.dtype),     i.vocab_size,      i.hidden_size,
          i.num_layers,         i.num_attention_heads,   i.num_kv_heads,    i.num_experts,
          i.experts_per_token,  i.num_shared_experts,    i.num_moe_layers,  i.max_position_embeddings,
          i.num_parameters,     i.active_parameters};
}

std::unique_ptr<Model> load(const Context& ctx, const std::string& directory, const std::string& dtype,
                            std::optional<int64_t> max_sequence_length, std::optional<int64_t> max_batch_tokens) {
  moe_model_load_options o;
  moe_model_load_options_init(&o);
  o.dtype = load_dtype(dtype);
  if (max_sequence_length) o.max_sequence_length = *max_sequence_length;
  if (max_batch_tokens) o.max_batch_tokens = *max_batch_tokens;
  moe_model* raw = nullptr;
  {
    py::gil_scoped_release nogil;
    auto use = ctx.handle.use();
    check(moe_model_load(use.get(), directory.c_str(), &o, &raw));
  }
  return std::make_unique<Model>(raw, ctx.log_sink);
}

py::array_t<float> forward(const Model& model, py::handle tokens, py::handle lengths, bool last_only, py::handle out) {
  PackedBatch batch = pack(tokens, lengths);
  const int64_t rows = last_only ? batch.lengths.size() : batch.ids.size();
  py::array_t<float> logits;
  if (out.is_none()) {
    logits = py::array_t<float>({rows, model.vocab_size});
  } else {
    if (!py::array_t<float, py::array::c_style>::check_(out))
      throw py::type_error("out must be a C-contiguous float32 numpy array");
    logits = py::reinterpret_borrow<py::array_t<float>>(out);
    if (logits.ndim() != 2 || logits.shape(0) != rows || logits.shape(1) != model.vocab_size)
      throw py::value_error("out must have shape (" + std::to_string(rows) + ", " + std::to_string(model.vocab_size) + ")");
    if (!logits.writeable()) throw py::value_error("out is read-only");
  }
  moe_forward_options o;
  moe_forward_options_init(&o);
  o.logits = last_only ? MOE_LOGITS_LAST : MOE_LOGITS_ALL;
  float* dst = logits.mutable_data();
  {
    py::gil_scoped_release nogil;
    auto use = model.handle.use();
    check(moe_forward(use.get(), batch.ids.data(), batch.lengths.data(), batch.lengths.size(), &o, dst,
                      rows * model.vocab_size));
  }
  return logits;
}

std::unique_ptr<Model> create(const Context& ctx, const std::string& config_path, uint64_t seed, const std::string& dtype,
                              std::optional<std::string> tokenizer_json) {
  moe_model_create_options o;
  moe_model_create_options_init(&o);
  o.seed = seed;
  o.dtype = dtype == "auto" ? MOE_LOAD_DTYPE_F32 : load_dtype(dtype);
  if (tokenizer_json) o.tokenizer_json = tokenizer_json->c_str();
  moe_model* raw = nullptr;
  {
    py::gil_scoped_release nogil;
    auto use = ctx.handle.use();
    check(moe_model_create(use.get(), config_path.c_str(), &o, &raw));
  }
  return std::make_unique<Model>(raw, ctx.log_sink);
}

void save(const Model& model, const std::string& directory) {
  py::gil_scoped_release nogil;
  auto use = model.handle.use();
  check(moe_model_save(use.get(), directory.c_str()));
}

}  // namespace

Model::Model(moe_model* raw, std::shared_ptr<LogSink> sink)
    : handle(raw, "Model"), vocab_size(describe_raw(raw).vocab_size), log_sink(std::move(sink)) {}

void Model::add_trainer(const std::shared_ptr<TrainerHandle>& trainer) {
  std::lock_guard lock(trainers_mutex_);
  if (closing_) throw py::value_error("the Model is closed");
  std::erase_if(trainers_, [](const auto& t) { return t.expired(); });
  trainers_.push_back(trainer);
}

void Model::add_stream(const std::shared_ptr<StreamState>& stream) {
  std::lock_guard lock(trainers_mutex_);
  if (closing_) throw py::value_error("the Model is closed");
  std::erase_if(streams_, [](const auto& s) { return s.expired(); });
  streams_.push_back(stream);
}

void Model::close() {
  std::vector<std::shared_ptr<TrainerHandle>> live;
  std::vector<std::shared_ptr<StreamState>> streams;
  {
    std::lock_guard lock(trainers_mutex_);
    closing_ = true;
    for (const auto& t : trainers_)
      if (auto held = t.lock()) live.push_back(std::move(held));
    for (const auto& s : streams_)
      if (auto held = s.lock()) streams.push_back(std::move(held));
  }
  try {
    for (const auto& t : live) t->close();
    for (const auto& s : streams) s->request_stop();
    handle.close();
  } catch (...) {  // closed from inside one of its calls: the model stays open
    std::lock_guard lock(trainers_mutex_);
    closing_ = false;
    throw;
  }
}

void bind_model(py::module_& m) {
  py::class_<ModelInfo>(m, "ModelInfo", "What moe_model_describe reports about a model.")
      .def_readonly("architecture", &ModelInfo::architecture, "config.json's model_type: \"mixtral\", \"deepseek_v3\"")
      .def_readonly("dtype", &ModelInfo::dtype, "weight dtype in memory: \"f32\" or \"bf16\"")
      .def_readonly("vocab_size", &ModelInfo::vocab_size)
      .def_readonly("hidden_size", &ModelInfo::hidden_size)
      .def_readonly("num_layers", &ModelInfo::num_layers)
      .def_readonly("num_attention_heads", &ModelInfo::num_attention_heads)
      .def_readonly("num_kv_heads", &ModelInfo::num_kv_heads)
      .def_readonly("num_experts", &ModelInfo::num_experts, "routed experts per MoE layer")
      .def_readonly("experts_per_token", &ModelInfo::experts_per_token)
      .def_readonly("num_shared_experts", &ModelInfo::num_shared_experts)
      .def_readonly("num_moe_layers", &ModelInfo::num_moe_layers)
      .def_readonly("max_position_embeddings", &ModelInfo::max_position_embeddings)
      .def_readonly("num_parameters", &ModelInfo::num_parameters)
      .def_readonly("active_parameters", &ModelInfo::active_parameters, "weights one token's forward pass touches")
      .def("__repr__", [](const ModelInfo& i) {
        return "ModelInfo(architecture='" + i.architecture + "', dtype='" + i.dtype + "', vocab_size=" +
               std::to_string(i.vocab_size) + ", num_layers=" + std::to_string(i.num_layers) + ", num_experts=" +
               std::to_string(i.num_experts) + ", num_parameters=" + std::to_string(i.num_parameters) + ")";
      });

  py::class_<Model> model(m, "Model", R"doc(
A model loaded from a Hugging Face checkpoint directory (config.json + safetensors, optionally
tokenizer.json). Read-only during inference: several threads may run forward() and generate() on one
model at once; the GIL is released while the library works.
)doc");
  model
      .def(py::init(&load), py::arg("context"), py::arg("directory"), py::kw_only(), py::arg("dtype") = "auto",
           py::arg("max_sequence_length") = py::none(), py::arg("max_batch_tokens") = py::none(),
           "Loads a checkpoint directory; dtype \"auto\" keeps the checkpoint's, or \"f32\" / \"bf16\".")
      .def("describe", &describe)
      .def("save", &save, py::arg("directory"),
           "Writes config.json and model.safetensors into directory (created if needed), each atomically.")
      .def("forward", &forward, py::arg("tokens"), py::arg("lengths") = py::none(), py::kw_only(),
           py::arg("last_only") = false, py::arg("out") = py::none(), R"doc(
Logits, float32 [rows, vocab_size], of a batch of sequences computed each as if alone.

tokens: one sequence (1-D), equal-length sequences (2-D [batch, length]), a list of sequences of
any lengths, or the sequences packed end to end (1-D) with their lengths. Rows are every token
(packed like the input) or, with last_only, the last token of each sequence. int32 C-contiguous
tokens and int64 lengths are read in place; out, a C-contiguous float32 array of the right shape,
receives the logits in place and is returned.
)doc")
      .def_static("create", &create, py::arg("context"), py::arg("config"), py::kw_only(), py::arg("seed") = 0,
                  py::arg("dtype") = "f32", py::arg("tokenizer") = py::none(), R"doc(
A new model from a Hugging Face config.json (the file's path) with random weights drawn from seed as
transformers initialises them. dtype "f32" (default; needed for full training) or "bf16"; tokenizer:
an optional tokenizer.json the model keeps (Model.tokenizer) and saves.
)doc")
      .def_property_readonly(
          "tokenizer", [](py::object self) { return Tokenizer::of_model(self); },
          "The tokenizer the checkpoint came with (NotFoundError if it had none); valid while the model is open.")
      .def("close", [](Model& self) {
        py::gil_scoped_release nogil;  // waits for calls running on other threads
        self.close();
      }, "Frees the model now (closing its trainers first), after calls running on other threads return; later calls raise ValueError.")
      .def_property_readonly("closed", [](const Model& self) { return self.handle.closed(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Model& self, py::args) {
        py::gil_scoped_release nogil;
        self.close();
      });
  bind_generation(model);
  bind_generate_batch(model);
}

}  // namespace moesdk
