// What the io tests share: a scratch directory, hand-made files, an assertion on errors, and the
// independent numpy reader (safetensors_numpy.py).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/json_file.h"

namespace moe::io::test {

// A fresh directory under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// A safetensors file image: the 8-byte length (that of `header` unless `claimed_length` is given),
// the header text as is, then `data`.
std::string safetensors_image(const std::string& header, const std::string& data,
                              std::optional<uint64_t> claimed_length = std::nullopt);

// `bytes` repeated copies of a byte pattern 0, 1, 2, ...: data sections of a given size.
std::string pattern_bytes(size_t bytes);

// The reference fixtures written by transformers (tests/reference/<name>).
std::string reference_dir(const std::string& name);

// Success when `f` throws moe::Error with `status` and a message containing every one of `parts`.
template <typename F>
::testing::AssertionResult fails_with(F&& f, moe_status status, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (e.status() != status)
      return ::testing::AssertionFailure() << "status " << e.status() << ", expected " << status << ": " << message;
    for (const std::string& part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << message << "\" does not contain \"" << part << "\"";
    return ::testing::AssertionSuccess() << message;
  }
  return ::testing::AssertionFailure() << "no moe::Error was thrown";
}

// safetensors_numpy.py's checksum of a tensor's bytes: sum(byte[i] * (i % 251 + 1)) mod 2^64.
uint64_t checksum(const void* data, size_t nbytes);

// safetensors_numpy.py's views of the files, {path: view} (see that script), or nullopt when no
// python3 with numpy was found at configure time (callers then GTEST_SKIP). Throws (failing the
// calling test) when the script finds a rule of the format broken.
std::optional<Json> numpy_read(const std::vector<std::string>& paths);

}  // namespace moe::io::test
