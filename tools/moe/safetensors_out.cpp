#include "safetensors_out.h"

#include <cstdio>
#include <stdexcept>

namespace cli {

void write_f32_safetensors(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                           const std::vector<float>& data) {
  std::string header = "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) header += ',';
    header += std::to_string(shape[i]);
  }
  header += "],\"data_offsets\":[0," + std::to_string(data.size() * sizeof(float)) + "]}}";
  while (header.size() % 8) header += ' ';  // the data section starts 8-byte aligned
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + tmp);
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path);
  }
}

}  // namespace cli
