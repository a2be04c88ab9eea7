// What the attention backward's host plan hands its kernels (attention_backward.cu, and the tensor-core
// kernels of attention_backward_mma.cu): the query tiles' order, the (slot, kv head) groups of cache rows
// with the query tiles that read them, the key tiles, and the gradients' buffers; and the key-major kernels'
// load of a query tile's row statistics. For CUDA sources only.
#pragma once

#include <cstdint>

#include "attention_kernels.cuh"

namespace moe_cuda {

// A (slot, kv head) block of cache rows and the query tiles that read it.
struct KeyGroup {
  int64_t cache_row;             // the block's first cache row
  int32_t reach;                 // keys [0, reach) are read by some tile
  int32_t first_tile, end_tile;  // its entries in the group tile list
};

// One block of the key-major kernel: keys [key0, key0 + B) of a group.
struct KeyTile {
  int32_t group, key0;
};

struct BackwardArgs {
  const float* out;           // [tokens, heads, dv]
  const float* dout;          // [tokens, heads, dv]
  float* dq;                  // [tokens, heads, dk]
  float* dk_cache;            // cache-shaped, accumulated
  float* dv_cache;
  float* lse;                 // [tokens, heads]: each row's log-sum-exp of its scaled scores (natural log;
                              // base 2 in the tensor-core kernels, which use it alone)
  float* delta;               // [tokens, heads]: dout . out
  const int32_t* tile_order;  // query tiles, longest first (the query-major kernel's blocks)
  const KeyGroup* groups;
  const int32_t* group_tiles;
  const KeyTile* key_tiles;
};

// Row r < tile_rows of query tile `it`: its lse, delta and kv_len into shared memory (zeros past the tile's
// rows), by the block's threads; the caller puts a barrier before reading them.
__device__ __forceinline__ void load_row_stats(const AttentionArgs& a, const BackwardArgs& g, const AttentionItem& it,
                                               int tile_rows, float* lse, float* delta, int* len) {
  const int rows = it.tokens * it.heads;
  for (int r = threadIdx.x; r < tile_rows; r += blockDim.x) {
    const bool real = r < rows;
    const int64_t at = real ? row_offset(a, it, r) : 0;
    lse[r] = real ? g.lse[at] : 0.f;
    delta[r] = real ? g.delta[at] : 0.f;
    len[r] = real ? a.kv_len[it.first_token + r / it.heads] : 0;
  }
}

}  // namespace moe_cuda
