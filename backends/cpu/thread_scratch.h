// Per-thread scratch memory for op internals (bf16 copies of activations, oneDNN scratchpads, expert
// intermediates, attention tiles). Each application thread has its own buffers, so concurrent calls
// never share one; a buffer grows to the largest request seen and is reused after. Different slots
// are independent, so an op can hold several at once.
#pragma once

#include <cstddef>

namespace moe_cpu {

enum class ScratchSlot {
  kMatmulA,          // A converted to the matmul's input type
  kOnednnScratchpad, // oneDNN's user-managed scratchpad
  kGemvA,            // bf16 A rows widened for the GEMV kernels
  kExpertInput,      // expert_mlp: the expert's rows, padded and in the weights' type
  kExpertHidden,     // expert_mlp: gate|up projection
  kExpertActivated,  // expert_mlp: act(gate) * up
  kExpertOutput,     // expert_mlp: down projection
  kAttention,        // attention tiles of all worker threads
  kExpertBackward,   // expert_mlp_backward: padded X and dY and the recomputed intermediates
  kCount
};

// 64-byte aligned, at least `bytes` long; valid until the same thread asks for the same slot again.
void* thread_scratch(ScratchSlot slot, size_t bytes);

template <typename T>
T* thread_scratch_as(ScratchSlot slot, size_t count) {
  return static_cast<T*>(thread_scratch(slot, count * sizeof(T)));
}

}  // namespace moe_cpu
