// A top-k list kept by one thread, as the CPU backend keeps it: larger value first, then lower id, so
// ties go to the lower id; NaN ranks as -infinity, so bad logits still give distinct, valid ids.
// Candidates enter in increasing id order: an equal value never passes an earlier (lower) id.
#pragma once

#include <cstdint>

namespace moe_cuda {

// The largest top_k and topk_group the routers take (their lists live in registers or local memory).
constexpr int kMaxTopK = 64;

__device__ __forceinline__ float rank_value(float v) { return isnan(v) ? -INFINITY : v; }

struct TopK {
  float values[kMaxTopK];
  int32_t ids[kMaxTopK];
  int capacity;
  int size = 0;

  __device__ explicit TopK(int capacity) : capacity(capacity) {}

  __device__ void offer(float value, int32_t id) {
    value = rank_value(value);
    if (size == capacity && !(value > values[size - 1])) return;
    int at = size < capacity ? size++ : capacity - 1;
    while (at > 0 && value > values[at - 1]) {
      values[at] = values[at - 1];
      ids[at] = ids[at - 1];
      --at;
    }
    values[at] = value;
    ids[at] = id;
  }

  __device__ bool contains(int32_t id) const {
    for (int i = 0; i < size; ++i)
      if (ids[i] == id) return true;
    return false;
  }
};

}  // namespace moe_cuda
