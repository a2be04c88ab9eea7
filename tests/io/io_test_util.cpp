#include "io_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace moe::io::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "moe-io-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string safetensors_image(const std::string& header, const std::string& data, std::optional<uint64_t> claimed_length) {
  uint64_t n = claimed_length.value_or(header.size());
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string pattern_bytes(size_t bytes) {
  std::string s(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>(i);
  return s;
}

std::string reference_dir(const std::string& name) { return std::string(MOE_REFERENCE_DIR) + "/" + name; }

uint64_t checksum(const void* data, size_t nbytes) {
  const auto* b = static_cast<const uint8_t*>(data);
  uint64_t sum = 0;
  for (size_t i = 0; i < nbytes; ++i) sum += uint64_t{b[i]} * (i % 251 + 1);
  return sum;
}

std::optional<Json> numpy_read(const std::vector<std::string>& paths) {
  const std::string python = MOE_IO_TEST_PYTHON;
  if (python.empty()) return std::nullopt;
  std::string command = "'" + python + "' '" MOE_IO_TEST_DIR "/safetensors_numpy.py'";
  for (const auto& path : paths) command += " '" + path + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string output;
  char buffer[65536];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  int status = ::pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(command + " failed: the file breaks a rule of the format (its stderr is above)");
  return Json::parse(output);
}

}  // namespace moe::io::test
