// The switch of the recorded decode steps' fused kernels: route_and_permute's one-block kernel,
// rmsnorm_linear's product that applies the norm itself, expert_mlp_unpermute's down product that combines
// the token's rows, and expert_gate_up's paired gate and up loads. They were written in sessions without a GPU; until
// a GPU check has shown them equal to the ops they replace, they run only where MOE_CUDA_FUSED_DECODE=1 (the
// ops in turn run otherwise, as before). Read at every recorded call, so that a test can record both ways in
// one process.
#pragma once

#include <cstdlib>
#include <cstring>

namespace moe_cuda {

inline bool fused_decode_switched_on() {
  const char* v = std::getenv("MOE_CUDA_FUSED_DECODE");
  return v && std::strcmp(v, "1") == 0;
}

}  // namespace moe_cuda
