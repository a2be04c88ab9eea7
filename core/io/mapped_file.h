// A whole file mapped read-only into memory: how checkpoints are read without copying them.
// Replacing the file (as io/atomic_file.h does) leaves the mapping valid; truncating it in place
// while it is mapped makes reads past the new end fault, which no mapping can guard against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace moe::io {

class MappedFile {
 public:
  // Maps `path` (read-only, private). A missing file is MOE_ERR_NOT_FOUND; anything else that stops
  // it (permissions, a directory, a device) is MOE_ERR_IO; both name the path.
  static std::unique_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's bytes; nullptr when the file is empty (an empty mapping does not exist).
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

// "cannot <what> <path>: <strerror(err)>" with the status errno calls for (ENOENT: not found).
[[noreturn]] void fail_errno(int err, const std::string& what, const std::string& path);

}  // namespace moe::io
