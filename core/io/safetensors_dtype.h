// The element types the safetensors format names in its headers, and which of them the SDK has a
// moe_dtype for.
#pragma once

#include <cstdint>
#include <string_view>

#include "moe/moe_common.h"

namespace moe::io {

struct SafetensorsDtype {
  const char* name;  // as written in headers: "F32", "BF16", "F8_E4M3", ...
  uint32_t bits;     // per element; F4 and F6 pack elements below a byte
  moe_dtype dtype;   // 0 when the SDK has no such element type
  int order;         // the format's alignment order: writers lay data out by descending order, then name
};

// The format's dtype named `name`, or nullptr when the format has none by that name.
const SafetensorsDtype* find_safetensors_dtype(std::string_view name);

// The format's dtype for a moe_dtype, or nullptr when `dtype` is not a valid moe_dtype.
const SafetensorsDtype* safetensors_dtype_of(moe_dtype dtype);

}  // namespace moe::io
