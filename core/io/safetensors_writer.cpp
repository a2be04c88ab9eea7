#include "io/safetensors_writer.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "base/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/safetensors_dtype.h"

namespace moe::io {
namespace {

struct Planned {
  const TensorToWrite* tensor;
  const SafetensorsDtype* dtype;
  uint64_t nbytes;
};

// A JSON string literal, escaped as the format's writer (serde_json) escapes it.
std::string json_string(const std::string& s, const std::string& what) {
  try {
    return Json(s).dump();
  } catch (const Json::type_error&) {
    fail(MOE_ERR_INVALID_ARGUMENT, what + " is not valid UTF-8");
  }
}

// Checks every tensor before a byte is written, and orders them as the format's writer does.
std::vector<Planned> plan(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  std::vector<Planned> planned;
  planned.reserve(tensors.size());
  std::set<std::string_view> seen;
  for (const TensorToWrite& t : tensors) {
    const std::string where = "writing " + path + ": tensor '" + t.name + "'";
    if (t.name == "__metadata__") fail(MOE_ERR_INVALID_ARGUMENT, where + ": the name is reserved by the format");
    if (!seen.insert(t.name).second) fail(MOE_ERR_INVALID_ARGUMENT, where + " appears twice");
    const SafetensorsDtype* dtype = safetensors_dtype_of(t.dtype);
    if (!dtype) fail(MOE_ERR_INVALID_ARGUMENT, where + " has unknown dtype " + std::to_string(t.dtype));
    uint64_t nbytes = dtype->bits / 8;
    for (int64_t d : t.shape) {
      if (d < 0) fail(MOE_ERR_INVALID_ARGUMENT, where + " has negative shape " + shape_string(t.shape));
      if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes))
        fail(MOE_ERR_INVALID_ARGUMENT, where + " has shape " + shape_string(t.shape) + ", whose size overflows");
    }
    if (nbytes > 0 && !t.data) fail(MOE_ERR_INVALID_ARGUMENT, where + " has no data");
    planned.push_back({&t, dtype, nbytes});
  }
  std::sort(planned.begin(), planned.end(), [](const Planned& a, const Planned& b) {
    if (a.dtype->order != b.dtype->order) return a.dtype->order > b.dtype->order;
    return a.tensor->name < b.tensor->name;
  });
  return planned;
}

// The header as serde_json writes it (compact, "__metadata__" first, tensors in data order),
// padded with spaces so that the data section starts 8-byte aligned.
std::string header_text(const std::string& path, const std::vector<Planned>& planned,
                        const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      const std::string where = "writing " + path + ": metadata '" + key + "'";
      if (!first) h += ",";
      h += json_string(key, where) + ":" + json_string(value, where);
      first = false;
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const Planned& p : planned) {
    if (h.size() > 1) h += ",";
    h += json_string(p.tensor->name, "writing " + path + ": tensor name '" + p.tensor->name + "'");
    h += ":{\"dtype\":\"" + std::string(p.dtype->name) + "\",\"shape\":[";
    for (size_t i = 0; i < p.tensor->shape.size(); ++i) {
      if (i) h += ",";
      h += std::to_string(p.tensor->shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + p.nbytes) + "]}";
    offset += p.nbytes;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  if (h.size() > kMaxSafetensorsHeaderBytes)
    fail(MOE_ERR_LIMIT, "writing " + path + ": the header would be " + std::to_string(h.size()) +
                            " bytes, over the format's limit of " + std::to_string(kMaxSafetensorsHeaderBytes));
  return h;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<Planned> planned = plan(path, tensors);
  const std::string header = header_text(path, planned, metadata);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i));

  AtomicFile file(path);
  file.write(length, sizeof length);
  file.write(header.data(), header.size());
  for (const Planned& p : planned) file.write(p.tensor->data, p.nbytes);
  file.commit();
}

}  // namespace moe::io
