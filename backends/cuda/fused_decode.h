// The switch of the recorded decode steps' fused kernels: route_and_permute's one-block kernel,
// rmsnorm_linear's product that applies the norm itself, expert_mlp_unpermute's down product that combines
// the token's rows, rope_kv_store's one kernel, and expert_gate_up's paired gate and up loads. They were written in sessions without a
// GPU; until a GPU check has shown them equal to the ops they replace, they run only where
// MOE_CUDA_FUSED_DECODE=1 (the ops in turn run otherwise, as before). MOE_CUDA_FUSED_DECODE_SKIP, a list of
// their names ("route_and_permute,expert_gate_up"), keeps those off while the others run, so that one found
// wrong can be set aside without a rebuild. Both are read at every recorded call, so that a test can record
// both ways in one process.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

namespace moe_cuda {

// Whether the fused kernel `name` (route_and_permute, rmsnorm_linear, expert_mlp_unpermute, expert_gate_up,
// rope_kv_store) is switched on.
inline bool fused_decode_switched_on(const char* name) {
  const char* on = std::getenv("MOE_CUDA_FUSED_DECODE");
  if (!on || std::strcmp(on, "1") != 0) return false;
  const char* skip = std::getenv("MOE_CUDA_FUSED_DECODE_SKIP");
  if (!skip) return true;
  const std::string list = std::string(",") + skip + ",";
  return list.find(std::string(",") + name + ",") == std::string::npos;
}

}  // namespace moe_cuda
