// Writing safetensors files the way the format's own library writes them, atomically.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "moe/moe_common.h"
#include "tensor/tensor.h"

namespace moe::io {

struct TensorToWrite {
  std::string name;
  moe_dtype dtype;
  Shape shape;
  const void* data;  // numel * dtype size bytes on the host, read during the call only
};

// Writes `tensors` and `metadata` (the header's "__metadata__", omitted when empty) to `path`.
// The layout is byte for byte what the Python safetensors library writes for the same tensors:
// data sorted by descending alignment then name, header padded with spaces to a multiple of 8 bytes,
// so every tensor's data is aligned to its element size.
// The file is written atomically (io/atomic_file.h): a crash leaves either the old file or the new
// one, never half of one. Bad arguments (duplicate or reserved names,
// unknown dtypes, negative or overflowing shapes, null data) are MOE_ERR_INVALID_ARGUMENT naming the
// tensor; a failed write (unwritable directory, disk full) is MOE_ERR_IO naming the path, and the
// temporary file is removed.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace moe::io
