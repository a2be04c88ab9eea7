#include "io/tensor_convert.h"

#include <cstring>

#include "base/dtype.h"
#include "base/error.h"

namespace moe::io {
namespace {

// Element i of a little-endian array that may be unaligned in the mapping.
template <typename T>
T load(const void* data, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(data) + i * sizeof(T), sizeof(T));
  return v;
}

// "tensor 'x' in /path/file": how every error here starts.
std::string describe(const TensorView& t) { return "tensor '" + t.name + "' in " + std::string(t.file); }

size_t checked_count(const TensorView& t, size_t dst_count) {
  const size_t elem = dtype_size(t.dtype);
  if (elem == 0) fail(MOE_ERR_INVALID_ARGUMENT, describe(t) + " has no valid dtype");
  const size_t numel = t.nbytes / elem;
  if (numel != dst_count)
    fail(MOE_ERR_INVALID_ARGUMENT, describe(t) + " has " + std::to_string(numel) +
                                       " elements, but the destination holds " + std::to_string(dst_count));
  return numel;
}

[[noreturn]] void fail_not_float(const TensorView& t, const char* target) {
  fail(MOE_ERR_FORMAT, describe(t) + " is " + dtype_name(t.dtype) +
                           ", which cannot be read as " + target + " (expected f32, bf16, f16 or f64)");
}

}  // namespace

void read_as_f32(const TensorView& t, std::span<float> dst) {
  const size_t n = checked_count(t, dst.size());
  switch (t.dtype) {
    case MOE_DTYPE_F32:
      if (n) std::memcpy(dst.data(), t.data, n * sizeof(float));
      return;
    case MOE_DTYPE_BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load<uint16_t>(t.data, i));
      return;
    case MOE_DTYPE_F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load<uint16_t>(t.data, i));
      return;
    case MOE_DTYPE_F64:
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load<double>(t.data, i));
      return;
    default:
      fail_not_float(t, "f32");
  }
}

void read_as_bf16(const TensorView& t, std::span<uint16_t> dst) {
  const size_t n = checked_count(t, dst.size());
  switch (t.dtype) {
    case MOE_DTYPE_BF16:
      if (n) std::memcpy(dst.data(), t.data, n * sizeof(uint16_t));
      return;
    case MOE_DTYPE_F32:
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(load<float>(t.data, i));
      return;
    case MOE_DTYPE_F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(f16_to_f32(load<uint16_t>(t.data, i)));
      return;
    case MOE_DTYPE_F64:
      for (size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(static_cast<float>(load<double>(t.data, i)));
      return;
    default:
      fail_not_float(t, "bf16");
  }
}

}  // namespace moe::io
