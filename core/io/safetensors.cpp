#include "io/safetensors.h"

#include <algorithm>
#include <string_view>
#include <tuple>

#include "base/error.h"
#include "io/json_file.h"
#include "io/safetensors_dtype.h"

namespace moe::io {
namespace {

// A tensor's header entry, checked on its own but not yet against the others.
struct Entry {
  std::string name;
  const SafetensorsDtype* dtype;
  Shape shape;
  uint64_t begin, end;  // data_offsets, relative to the data section
  uint64_t nbytes;      // what the shape and dtype need
};

std::string offsets_string(uint64_t begin, uint64_t end) {
  // Appended piece by piece: `"[" + std::to_string(...)` trips a false -Wrestrict in GCC 12.
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  return s + "]";
}

class HeaderReader {
 public:
  explicit HeaderReader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail_tensor(moe_status status, const std::string& name, const std::string& what) const {
    fail(status, source_ + ": tensor '" + name + "' " + what);
  }

  // A non-negative JSON integer (the format's usize); `what` names the field for errors.
  uint64_t read_unsigned(const std::string& name, const char* what, const Json& value) const {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer() && value.get<int64_t>() >= 0) return static_cast<uint64_t>(value.get<int64_t>());
    fail_tensor(MOE_ERR_FORMAT, name, std::string("has ") + what + " that is not a non-negative integer");
  }

  const Json& field(const std::string& name, const Json& info, const char* key) const {
    auto it = info.find(key);
    if (it == info.end()) fail_tensor(MOE_ERR_FORMAT, name, std::string("has no \"") + key + "\"");
    return *it;
  }

  Entry read_entry(const std::string& name, const Json& info) const {
    if (!info.is_object()) fail_tensor(MOE_ERR_FORMAT, name, "is not described by a JSON object");
    Entry e;
    e.name = name;

    const Json& dtype = field(name, info, "dtype");
    if (!dtype.is_string()) fail_tensor(MOE_ERR_FORMAT, name, "has a \"dtype\" that is not a string");
    e.dtype = find_safetensors_dtype(dtype.get_ref<const std::string&>());
    if (!e.dtype)
      fail_tensor(MOE_ERR_UNSUPPORTED, name,
                  "has dtype '" + dtype.get<std::string>() + "', which is not a safetensors dtype this reader knows");

    const Json& shape = field(name, info, "shape");
    if (!shape.is_array()) fail_tensor(MOE_ERR_FORMAT, name, "has a \"shape\" that is not a list");
    // The element count and byte size are computed in 64 bits with every step checked: a header may
    // claim any shape, and only what fits the file is real.
    uint64_t numel = 1;
    std::string dims;
    bool overflow = false;
    for (const Json& d : shape) {
      if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
        fail_tensor(MOE_ERR_FORMAT, name, "has a negative dimension " + std::to_string(d.get<int64_t>()) + " in its shape");
      uint64_t dim = read_unsigned(name, "a shape dimension", d);
      if (!dims.empty()) dims += ", ";
      dims += std::to_string(dim);
      if (dim > static_cast<uint64_t>(INT64_MAX)) overflow = true;
      overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbits = 0;
    if (overflow || numel > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(numel, uint64_t{e.dtype->bits}, &nbits))
      fail_tensor(MOE_ERR_FORMAT, name, "has shape [" + dims + "], whose size overflows 64 bits");
    if (nbits % 8 != 0)
      fail_tensor(MOE_ERR_FORMAT, name,
                  "has shape [" + dims + "] of " + e.dtype->name + ", which does not fill whole bytes");
    e.nbytes = nbits / 8;

    const Json& offsets = field(name, info, "data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
      fail_tensor(MOE_ERR_FORMAT, name, "has \"data_offsets\" that are not a list [begin, end]");
    e.begin = read_unsigned(name, "a data offset", offsets[0]);
    e.end = read_unsigned(name, "a data offset", offsets[1]);
    return e;
  }

  std::map<std::string, std::string> read_metadata(const Json& value) const {
    std::map<std::string, std::string> out;
    if (value.is_null()) return out;  // the reference reader accepts an explicit null
    if (!value.is_object()) fail(MOE_ERR_FORMAT, source_ + ": \"__metadata__\" is not a JSON object");
    for (const auto& item : value.items()) {
      if (!item.value().is_string())
        fail(MOE_ERR_FORMAT, source_ + ": \"__metadata__\" entry '" + item.key() + "' is not a string");
      out.emplace(item.key(), item.value().get<std::string>());
    }
    return out;
  }

  // The reference reader's rule: sorted by offsets, the tensors start at 0, follow each other
  // without gap or overlap, each spans exactly its size, and together they end at the data
  // section's end.
  void check_layout(std::vector<Entry>& entries, uint64_t data_size) const {
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    uint64_t cursor = 0;
    const Entry* previous = nullptr;
    for (const Entry& e : entries) {
      const std::string offsets = "data_offsets " + offsets_string(e.begin, e.end);
      if (e.end < e.begin) fail_tensor(MOE_ERR_FORMAT, e.name, "has " + offsets + " that end before they begin");
      if (e.end > data_size)
        fail_tensor(MOE_ERR_FORMAT, e.name,
                    "has " + offsets + " outside the data section of " + std::to_string(data_size) +
                        " bytes (is the file truncated?)");
      if (e.begin < cursor)
        fail_tensor(MOE_ERR_FORMAT, e.name,
                    "has " + offsets + " overlapping tensor '" + previous->name + "', which ends at " +
                        std::to_string(cursor));
      if (e.begin > cursor)
        fail_tensor(MOE_ERR_FORMAT, e.name,
                    "has " + offsets + " leaving a gap after byte " + std::to_string(cursor) +
                        " (tensors must tile the data section)");
      if (e.end - e.begin != e.nbytes)
        fail_tensor(MOE_ERR_FORMAT, e.name,
                    "has " + offsets + " spanning " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                        shape_string(e.shape) + " of " + e.dtype->name + " needs " + std::to_string(e.nbytes));
      cursor = e.end;
      previous = &e;
    }
    if (cursor != data_size)
      fail(MOE_ERR_FORMAT, source_ + ": the tensors cover " + std::to_string(cursor) + " bytes of a data section of " +
                               std::to_string(data_size) + " bytes (trailing bytes after the last tensor)");
  }

 private:
  const std::string& source_;
};

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  const uint8_t* bytes = mapped->data();
  size_t size = mapped->size();
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(mapped), path));
  file->parse_image(bytes, size);
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(const void* bytes, size_t size, const std::string& source) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(nullptr, source));
  file->parse_image(static_cast<const uint8_t*>(bytes), size);
  return file;
}

void SafetensorsFile::parse_image(const uint8_t* bytes, size_t size) {
  constexpr size_t kLengthBytes = 8;
  if (size < kLengthBytes)
    fail(MOE_ERR_FORMAT, path_ + ": file of " + std::to_string(size) +
                             " bytes is too short for the 8-byte header length (is it truncated?)");
  uint64_t header_len = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) header_len |= uint64_t{bytes[i]} << (8 * i);
  if (header_len > kMaxSafetensorsHeaderBytes)
    fail(MOE_ERR_FORMAT, path_ + ": header length " + std::to_string(header_len) + " exceeds the format's limit of " +
                             std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  if (header_len > size - kLengthBytes)
    fail(MOE_ERR_FORMAT, path_ + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                             std::to_string(size) + "-byte file (is it truncated?)");

  // A valid header nests three levels (header, tensor, shape) and holds no list longer than a shape.
  JsonLimits limits;
  limits.max_depth = 3;
  limits.max_array_length = kMaxSafetensorsRank;
  std::string_view text(reinterpret_cast<const char*>(bytes + kLengthBytes), header_len);
  Json header = parse_json(text, path_ + " (header)", limits);
  if (!header.is_object()) fail(MOE_ERR_FORMAT, path_ + ": the header is not a JSON object");

  HeaderReader reader(path_);
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__")
      metadata_ = reader.read_metadata(item.value());
    else
      entries.push_back(reader.read_entry(item.key(), item.value()));
  }
  const uint64_t data_start = kLengthBytes + header_len;
  reader.check_layout(entries, size - data_start);

  for (Entry& e : entries) {
    if (e.dtype->dtype == 0) {
      unsupported_.emplace(e.name, e.dtype->name);
      continue;
    }
    TensorView view{e.name, e.dtype->dtype, std::move(e.shape), bytes + data_start + e.begin,
                    static_cast<size_t>(e.nbytes), path_};
    tensors_.emplace(std::move(e.name), std::move(view));
  }
}

bool SafetensorsFile::contains(const std::string& name) const {
  return tensors_.count(name) != 0 || unsupported_.count(name) != 0;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return &it->second;
  auto u = unsupported_.find(name);
  if (u != unsupported_.end())
    fail(MOE_ERR_UNSUPPORTED,
         path_ + ": tensor '" + name + "' has dtype " + u->second +
             ", which MoE SDK does not support (it reads F32, BF16, F16, F64, I64, I32, I8 and U8)");
  return nullptr;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size() + unsupported_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  for (const auto& [name, dtype] : unsupported_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace moe::io
