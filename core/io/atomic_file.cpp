#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace moe::io {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) fail_io(errno, "create");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!renamed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail_io(int err, const char* what) const {
  fail(MOE_ERR_IO, "cannot write " + path_ + " (" + what + " " + temp_path_ + "): " + std::strerror(err));
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0) fail(MOE_ERR_INTERNAL, "write to " + path_ + " after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    // Linux writes at most 2 GiB - 4 KiB per call; partial writes are resumed.
    ssize_t n = ::write(fd_, p, std::min<size_t>(size, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_io(n < 0 ? errno : ENOSPC, "write");
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(MOE_ERR_INTERNAL, "commit of " + path_ + " twice");
  if (::fsync(fd_) != 0) fail_io(errno, "flush");
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_io(errno, "close");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_io(errno, "rename into place");
  renamed_ = true;
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) fail(MOE_ERR_IO, "wrote " + path_ + " but cannot open its directory to sync it: " + std::strerror(errno));
  int rc = ::fsync(dir_fd);
  int err = errno;
  ::close(dir_fd);
  // Some file systems cannot sync a directory (EINVAL); the rename is then as durable as they allow.
  if (rc != 0 && err != EINVAL)
    fail(MOE_ERR_IO, "wrote " + path_ + " but cannot sync its directory: " + std::strerror(err));
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile file(path);
  file.write(contents.data(), contents.size());
  file.commit();
}

}  // namespace moe::io
