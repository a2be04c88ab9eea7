// Reading safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the data section. The file is memory-mapped and never copied; every header field is checked
// before use, with the rules of the format's reference reader (the Rust crate's Metadata::validate):
// the tensors, sorted by offsets, must tile the data section exactly, without gaps or overlaps, and
// each must hold exactly numel * element size bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "moe/moe_common.h"
#include "tensor/tensor.h"

namespace moe::io {

// The format's limit on the JSON header (the reference reader refuses larger ones too).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Tensors with more dimensions are refused (MOE_ERR_LIMIT) while the header is parsed.
inline constexpr size_t kMaxSafetensorsRank = 64;

// One tensor of a file. `data` and `file` point into the SafetensorsFile that made the view and
// live as long as it does. `data` is aligned to the element size when the writer aligned it, as the
// format's own writer does; read it through memcpy (or io/tensor_convert.h) when unsure.
struct TensorView {
  std::string name;
  moe_dtype dtype;
  Shape shape;
  const void* data;
  size_t nbytes;
  std::string_view file;  // the path of the file holding it, for error messages
};

class SafetensorsFile {
 public:
  // Maps and validates the file. Errors name the file and, where one is at fault, the tensor:
  // a missing file is MOE_ERR_NOT_FOUND, an unreadable one MOE_ERR_IO, a malformed one
  // MOE_ERR_FORMAT, a dtype the format does not define MOE_ERR_UNSUPPORTED.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // The same checks on a whole file image held in memory; `bytes` must outlive the result, and
  // `source` names the image in errors. The fuzz target's entry point.
  static std::shared_ptr<SafetensorsFile> parse(const void* bytes, size_t size, const std::string& source);

  // True when the file holds a tensor of that name, whatever its dtype.
  bool contains(const std::string& name) const;
  // The tensor, or nullptr when the file has none of that name. A tensor whose dtype the SDK cannot
  // represent (BOOL, U16, F8_E4M3, ...) is MOE_ERR_UNSUPPORTED naming the file, tensor and dtype.
  const TensorView* find(const std::string& name) const;
  // Every tensor name, sorted; includes tensors of unsupported dtypes.
  std::vector<std::string> names() const;
  // The header's "__metadata__" (empty when absent), e.g. {"format": "pt"}.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The path the file was opened from (the `source` of parse()).
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}
  void parse_image(const uint8_t* bytes, size_t size);

  std::unique_ptr<MappedFile> file_;  // null for parse()
  std::string path_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> unsupported_;  // name -> the format's dtype name
  std::map<std::string, std::string> metadata_;
};

}  // namespace moe::io
