// The CUDA backend created with MOE_CUDA_F32_MATH=bf16 (products of f32 operands on bf16 tensor cores),
// for tests of that mode. The environment is restored after the instance is created.
#pragma once

#include <memory>
#include <string>

#include "tensor/backend.h"

namespace moe::testing {

// Null, with `skip` saying why, when the cuda plugin is absent or cannot run here.
std::unique_ptr<Backend> cuda_with_bf16_math(std::string& skip);

}  // namespace moe::testing
