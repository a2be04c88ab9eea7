// Atomic file writes: data goes to `path`.tmp-<pid>, is flushed to disk and renamed over `path`,
// so a crash at any moment leaves either the old file or the complete new one, never a part.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace moe::io {

class AtomicFile {
 public:
  // Creates the temporary file; MOE_ERR_IO naming `path` when it cannot (missing or read-only
  // directory).
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() renamed it into place.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes; MOE_ERR_IO naming `path` on failure (disk full, file size limit).
  void write(const void* data, size_t size);
  // Flushes to disk, renames over `path` and syncs the directory so the rename survives a crash.
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_io(int err, const char* what) const;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool renamed_ = false;
};

// Writes `contents` to `path` atomically (config.json, index files).
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace moe::io
