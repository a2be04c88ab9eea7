#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "base/error.h"
#include "io/tensor_convert.h"

namespace moe::io {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string join(const std::string& directory, const std::string& name) { return (fs::path(directory) / name).string(); }

bool is_regular_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// Shard names come from a file we did not write: keep them inside the model directory.
bool is_safe_relative_path(const std::string& name) {
  fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

std::vector<std::string> safetensors_files_in(const std::string& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() > 12 && name.ends_with(".safetensors") && is_regular_file(it->path().string()))
      names.push_back(std::move(name));
  }
  if (ec) fail(MOE_ERR_IO, "cannot list model directory " + directory + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& directory) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec))
    fail(MOE_ERR_NOT_FOUND, "model directory " + directory + (fs::exists(directory, ec) ? " is not a directory"
                                                                                        : " does not exist"));
  const std::string config_path = join(directory, kConfigFile);
  if (!fs::exists(config_path, ec))
    fail(MOE_ERR_NOT_FOUND, "model directory " + directory + " has no " + kConfigFile);
  Checkpoint checkpoint(directory, ConfigReader::from_file(config_path));

  if (is_regular_file(join(directory, kSingleFile))) {
    checkpoint.load_single(kSingleFile);
  } else if (is_regular_file(join(directory, kIndexFile))) {
    checkpoint.load_index(kIndexFile);
  } else {
    std::vector<std::string> found = safetensors_files_in(directory);
    if (found.empty())
      fail(MOE_ERR_NOT_FOUND, "model directory " + directory + " has no " + kSingleFile + ", " + kIndexFile +
                                  " or other *.safetensors file");
    checkpoint.load_all(found);
  }
  return checkpoint;
}

void Checkpoint::load_single(const std::string& file_name) {
  weights_source_ = file_name;
  files_.push_back(SafetensorsFile::open(join(directory_, file_name)));
  for (const std::string& name : files_.back()->names()) tensors_.emplace(name, files_.back().get());
}

void Checkpoint::load_index(const std::string& index_name) {
  weights_source_ = index_name;
  const std::string index_path = join(directory_, index_name);
  const ConfigReader weight_map = ConfigReader::from_file(index_path).object("weight_map");
  std::map<std::string, const SafetensorsFile*> shards;  // each shard opened once
  for (const std::string& name : weight_map.keys()) {
    const std::string shard = weight_map.get_string(name);
    if (!is_safe_relative_path(shard))
      fail(MOE_ERR_FORMAT, index_path + ": tensor '" + name + "' is placed in '" + shard +
                               "', which is not a file name inside the model directory");
    auto it = shards.find(shard);
    if (it == shards.end()) {
      try {
        files_.push_back(SafetensorsFile::open(join(directory_, shard)));
      } catch (const Error& e) {
        fail(e.status(), index_path + " places tensor '" + name + "' in shard " + shard +
                             ", which cannot be read: " + e.what());
      }
      it = shards.emplace(shard, files_.back().get()).first;
    }
    if (!it->second->contains(name))
      fail(MOE_ERR_FORMAT, index_path + " places tensor '" + name + "' in shard " + shard + ", but " +
                               it->second->path() + " has no such tensor");
    tensors_.emplace(name, it->second);
  }
}

void Checkpoint::load_all(const std::vector<std::string>& file_names) {
  weights_source_ = std::to_string(file_names.size()) + " *.safetensors files";
  for (const std::string& file_name : file_names) {
    files_.push_back(SafetensorsFile::open(join(directory_, file_name)));
    const SafetensorsFile* file = files_.back().get();
    for (const std::string& name : file->names()) {
      auto [it, added] = tensors_.emplace(name, file);
      if (!added)
        fail(MOE_ERR_FORMAT, "tensor '" + name + "' appears in both " + it->second->path() + " and " + file->path());
    }
  }
}

const SafetensorsFile& Checkpoint::file_holding(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    fail(MOE_ERR_NOT_FOUND, "tensor '" + name + "' not found in " + directory_ + " (" + weights_source_ + ")");
  return *it->second;
}

bool Checkpoint::has(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorView& Checkpoint::tensor(const std::string& name) const {
  // Never null: tensors_ lists only names their file contains, and find() throws for the ones of an
  // unsupported dtype.
  return *file_holding(name).find(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, file] : tensors_) out.push_back(name);
  return out;
}

void Checkpoint::expect_shape(const TensorView& t, const Shape& expected) const {
  if (t.shape != expected)
    fail(MOE_ERR_FORMAT, "tensor '" + t.name + "' in " + std::string(t.file) + " has shape " + shape_string(t.shape) +
                             ", expected " + shape_string(expected));
}

void Checkpoint::read_f32(const std::string& name, std::span<float> dst) const {
  read_as_f32(tensor(name), dst);
}

void Checkpoint::read_bf16(const std::string& name, std::span<uint16_t> dst) const {
  read_as_bf16(tensor(name), dst);
}

}  // namespace moe::io
