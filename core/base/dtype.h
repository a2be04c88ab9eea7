// Element types: sizes, names, and the f32 <-> bf16 conversions the core needs on the host.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "moe/moe_common.h"

namespace moe {

inline size_t dtype_size(moe_dtype t) {
  switch (t) {
    case MOE_DTYPE_F32: case MOE_DTYPE_I32: return 4;
    case MOE_DTYPE_BF16: case MOE_DTYPE_F16: return 2;
    case MOE_DTYPE_I64: case MOE_DTYPE_F64: return 8;
    case MOE_DTYPE_I8: case MOE_DTYPE_U8: return 1;
    default: return 0;
  }
}

inline const char* dtype_name(moe_dtype t) {
  switch (t) {
    case MOE_DTYPE_F32: return "f32";
    case MOE_DTYPE_BF16: return "bf16";
    case MOE_DTYPE_F16: return "f16";
    case MOE_DTYPE_I32: return "i32";
    case MOE_DTYPE_I64: return "i64";
    case MOE_DTYPE_I8: return "i8";
    case MOE_DTYPE_U8: return "u8";
    case MOE_DTYPE_F64: return "f64";
    default: return "unknown";
  }
}

// Round to nearest even, NaN kept quiet: the same rounding PyTorch's .to(torch.bfloat16) does.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half -> float (safetensors checkpoints may be stored in f16).
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) { man <<= 1; --exp; }
      u = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace moe
