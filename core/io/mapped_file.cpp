#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace moe::io {

void fail_errno(int err, const std::string& what, const std::string& path) {
  fail(err == ENOENT ? MOE_ERR_NOT_FOUND : MOE_ERR_IO, "cannot " + what + " " + path + ": " + std::strerror(err));
}

std::unique_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(errno, "open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail_errno(err, "stat", path);
  }
  // A directory opens fine and a FIFO would block or change under us: only regular files map.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(MOE_ERR_IO, "cannot read " + path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = nullptr;
  if (size > 0) {
    data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail_errno(err, "map", path);
    }
  }
  ::close(fd);  // the mapping keeps the file open
  return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(data), size));
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace moe::io
