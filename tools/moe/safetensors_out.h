// Writes one f32 tensor as a .safetensors file (the format Python's safetensors reads), so that the
// CLI's logits can be compared with other implementations. The CLI uses only the public API, so it
// carries this small writer rather than the core's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cli {

void write_f32_safetensors(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                           const std::vector<float>& data);

}  // namespace cli
