#include "model/weight_io.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <span>

#include "base/dtype.h"
#include "base/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "model/weight_table.h"
#include "tensor/backend.h"

namespace moe {
namespace {

size_t numel(const Shape& s) { return static_cast<size_t>(shape_numel(s)); }

// Which checkpoint tensors hold an entry, shape-checked: its parts when all exist, else its fused
// alternative.
std::vector<const io::TensorView*> find_sources(const io::Checkpoint& ck, const WeightEntry& e) {
  std::vector<const io::TensorView*> views;
  bool all_parts = true;
  for (const auto& part : e.parts) all_parts = all_parts && ck.has(part.name);
  if (all_parts) {
    for (const auto& part : e.parts) {
      const io::TensorView& v = ck.tensor(part.name);
      ck.expect_shape(v, part.shape);
      views.push_back(&v);
    }
    return views;
  }
  if (!e.fused_name.empty() && ck.has(e.fused_name)) {
    const io::TensorView& v = ck.tensor(e.fused_name);
    ck.expect_shape(v, e.shape);
    views.push_back(&v);
    return views;
  }
  // Name the first missing part (and the alternative) in the error.
  for (const auto& part : e.parts)
    if (!ck.has(part.name)) {
      if (!e.fused_name.empty())
        fail(MOE_ERR_NOT_FOUND, "tensor '" + part.name + "' (or the fused '" + e.fused_name + "') not found in " +
                                    ck.directory());
      ck.tensor(part.name);  // throws the checkpoint's not-found error
    }
  fail(MOE_ERR_INTERNAL, "weight table entry without parts");
}

}  // namespace

ModelWeights load_weights(const io::Checkpoint& ck, const ModelConfig& config, Backend& backend, moe_dtype dtype) {
  ModelWeights w;
  for (const WeightEntry& e : weight_table(config, w)) {
    auto sources = find_sources(ck, e);
    const moe_dtype target = e.keep_f32 ? MOE_DTYPE_F32 : dtype;
    const size_t total = numel(e.shape);
    *e.target = Tensor::empty(backend, target, e.shape, Lifetime::kPersistent);
    // Convert part by part into one host buffer, then one upload.
    std::vector<uint8_t> host(total * dtype_size(target));
    size_t offset = 0;
    for (const io::TensorView* v : sources) {
      size_t n = numel(v->shape);
      uint8_t* dst = host.data() + offset * dtype_size(target);
      if (target == MOE_DTYPE_F32)
        ck.read_f32(v->name, std::span<float>(reinterpret_cast<float*>(dst), n));
      else
        ck.read_bf16(v->name, std::span<uint16_t>(reinterpret_cast<uint16_t*>(dst), n));
      offset += n;
    }
    e.target->copy_from_host(host.data(), host.size());
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

ModelWeights random_weights(const ModelConfig& config, Backend& backend, moe_dtype dtype, uint64_t seed, double stddev) {
  ModelWeights w;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, static_cast<float>(stddev));
  for (const WeightEntry& e : weight_table(config, w)) {
    const moe_dtype target = e.keep_f32 ? MOE_DTYPE_F32 : dtype;
    std::vector<float> values(numel(e.shape));
    if (!e.is_parameter)
      std::fill(values.begin(), values.end(), 0.f);  // router selection biases
    else if (e.keep_f32 && e.shape.size() == 1)
      std::fill(values.begin(), values.end(), 1.f);  // RMSNorm weights
    else
      for (auto& v : values) v = normal(rng);
    *e.target = Tensor::empty(backend, target, e.shape, Lifetime::kPersistent);
    if (target == MOE_DTYPE_F32) {
      e.target->copy_from_host(values.data(), values.size() * sizeof(float));
    } else {
      std::vector<uint16_t> half(values.size());
      for (size_t i = 0; i < values.size(); ++i) half[i] = f32_to_bf16(values[i]);
      e.target->copy_from_host(half.data(), half.size() * sizeof(uint16_t));
    }
  }
  if (config.tie_word_embeddings) w.lm_head = w.embed_tokens;
  return w;
}

ParameterCounts count_parameters(const ModelConfig& config) {
  ModelWeights scratch;
  ParameterCounts c;
  for (const WeightEntry& e : weight_table(config, scratch)) {
    if (!e.is_parameter) continue;
    int64_t n = shape_numel(e.shape);
    c.total += n;
    c.active += e.routed_experts ? n / config.num_experts * config.experts_per_token : n;
  }
  return c;
}

void save_weights(const ModelWeights& weights, const ModelConfig& config, moe_dtype dtype, const std::string& path) {
  ModelWeights layout = weights;  // the table's targets point into this copy, which shares the tensors
  auto table = weight_table(config, layout);
  // Host copies of every part, kept alive until the file is written.
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<io::TensorToWrite> out;
  for (const WeightEntry& e : table) {
    const Tensor& t = *e.target;
    const moe_dtype stored = e.keep_f32 ? MOE_DTYPE_F32 : dtype;
    std::vector<uint8_t> raw(t.nbytes());
    t.copy_to_host(raw.data(), raw.size());
    std::vector<uint8_t> converted(numel(e.shape) * dtype_size(stored));
    const size_t n = numel(e.shape);
    if (t.dtype() == stored) {
      converted = std::move(raw);
    } else if (stored == MOE_DTYPE_BF16) {  // f32 in memory, bf16 on disk
      auto* src = reinterpret_cast<const float*>(raw.data());
      auto* dst = reinterpret_cast<uint16_t*>(converted.data());
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
    } else {  // bf16 in memory, f32 on disk
      auto* src = reinterpret_cast<const uint16_t*>(raw.data());
      auto* dst = reinterpret_cast<float*>(converted.data());
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
    }
    buffers.push_back(std::move(converted));
    const uint8_t* base = buffers.back().data();
    size_t offset = 0;
    for (const auto& part : e.parts) {
      out.push_back({part.name, stored, part.shape, base + offset});
      offset += numel(part.shape) * dtype_size(stored);
    }
  }
  io::write_safetensors(path, out, {{"format", "pt"}});
}

}  // namespace moe
