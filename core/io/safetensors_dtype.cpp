#include "io/safetensors_dtype.h"

namespace moe::io {
namespace {

// Every dtype of the safetensors format (safetensors 0.6), in the format's own order: its writer
// sorts tensors by descending position in this list so that each tensor's data is aligned to its
// element size.
constexpr SafetensorsDtype kDtypes[] = {
    {"BOOL", 8, 0, 0},
    {"F4", 4, 0, 1},
    {"F6_E2M3", 6, 0, 2},
    {"F6_E3M2", 6, 0, 3},
    {"U8", 8, MOE_DTYPE_U8, 4},
    {"I8", 8, MOE_DTYPE_I8, 5},
    {"F8_E5M2", 8, 0, 6},
    {"F8_E4M3", 8, 0, 7},
    {"F8_E8M0", 8, 0, 8},
    {"I16", 16, 0, 9},
    {"U16", 16, 0, 10},
    {"F16", 16, MOE_DTYPE_F16, 11},
    {"BF16", 16, MOE_DTYPE_BF16, 12},
    {"I32", 32, MOE_DTYPE_I32, 13},
    {"U32", 32, 0, 14},
    {"F32", 32, MOE_DTYPE_F32, 15},
    {"C64", 64, 0, 16},
    {"F64", 64, MOE_DTYPE_F64, 17},
    {"I64", 64, MOE_DTYPE_I64, 18},
    {"U64", 64, 0, 19},
};

}  // namespace

const SafetensorsDtype* find_safetensors_dtype(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const SafetensorsDtype* safetensors_dtype_of(moe_dtype dtype) {
  if (dtype == 0) return nullptr;
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return &d;
  return nullptr;
}

}  // namespace moe::io
