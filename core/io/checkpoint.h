// A Hugging Face model directory, read unchanged: config.json plus the weights in one of the three
// layouts save_pretrained and other tools produce:
//   model.safetensors                                       one file (preferred when present, as in transformers)
//   model.safetensors.index.json + the shards it names      {"weight_map": {tensor: shard file}}
//   any *.safetensors files                                 when neither of the above exists
// Every file is memory-mapped once and validated when the checkpoint opens.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/config_reader.h"
#include "io/safetensors.h"

namespace moe::io {

class Checkpoint {
 public:
  // Opens the directory. A missing directory, config.json or weights is MOE_ERR_NOT_FOUND naming the
  // directory and the file; a shard the index names that is missing, or that lacks a tensor the
  // index places in it, is an error naming the index and the shard; a tensor present in two files
  // of the *.safetensors layout is MOE_ERR_FORMAT naming both.
  static Checkpoint open(const std::string& directory);

  const std::string& directory() const { return directory_; }
  // The config.json reader.
  const ConfigReader& config() const { return config_; }
  // Where the weights came from: "model.safetensors", "model.safetensors.index.json" or
  // "N *.safetensors files".
  const std::string& weights_source() const { return weights_source_; }

  // True when the checkpoint has the tensor (whatever its dtype).
  bool has(const std::string& name) const;
  // The tensor; a missing one is MOE_ERR_NOT_FOUND ("tensor 'x' not found in /dir
  // (model.safetensors.index.json)"), one of a dtype the SDK lacks is MOE_ERR_UNSUPPORTED.
  const TensorView& tensor(const std::string& name) const;
  // Every tensor name, sorted.
  std::vector<std::string> names() const;

  // MOE_ERR_FORMAT "tensor 'x' in /dir/file has shape [a, b], expected [c, d]" unless t has `expected`.
  void expect_shape(const TensorView& t, const Shape& expected) const;

  // The tensor converted into a caller buffer of exactly its element count (io/tensor_convert.h has
  // the same for a TensorView).
  void read_f32(const std::string& name, std::span<float> dst) const;
  void read_bf16(const std::string& name, std::span<uint16_t> dst) const;

 private:
  Checkpoint(std::string directory, ConfigReader config) : directory_(std::move(directory)), config_(std::move(config)) {}
  void load_single(const std::string& file_name);
  void load_index(const std::string& index_name);
  void load_all(const std::vector<std::string>& file_names);
  const SafetensorsFile& file_holding(const std::string& name) const;

  std::string directory_;
  ConfigReader config_;
  std::string weights_source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> tensors_;  // name -> the file holding it (owned by files_)
};

}  // namespace moe::io
