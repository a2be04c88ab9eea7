// Reading a checkpoint tensor into a host buffer of the type the model keeps it in, converting
// between floating-point types on the way. The model loader's path from a mapping to a weight.
#pragma once

#include <cstdint>
#include <span>

#include "io/safetensors.h"

namespace moe::io {

// Copies `t` into `dst` as f32 (from f32, bf16, f16 or f64). `dst` must hold exactly the tensor's
// element count (MOE_ERR_INVALID_ARGUMENT otherwise); a tensor that is not floating-point is
// MOE_ERR_FORMAT. Errors name the tensor and its file.
void read_as_f32(const TensorView& t, std::span<float> dst);

// The same into bf16 (raw uint16_t bits), rounding to nearest even; f64 is rounded through f32, as
// PyTorch's .to(torch.bfloat16) does.
void read_as_bf16(const TensorView& t, std::span<uint16_t> dst);

}  // namespace moe::io
