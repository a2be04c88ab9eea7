// The attention backward's two kernels on bf16 tensor cores with register-resident fragments
// (attention_backward_mma.cu), for MOE_CUDA_F32_MATH=bf16, tiles of 64 rows and keys, and head dims up to
// kAttentionMmaMaxHeadDim; attention_backward.cu plans the tiles and falls back to its shared-memory tile
// products elsewhere.
#pragma once

#include <cstdint>

#include "attention_backward_args.h"
#include "attention_forward_mma.h"
#include "attention_kernels.cuh"

namespace moe_cuda {

constexpr int kAttentionMmaTile = 64;

bool attention_backward_mma_fits(const moe_backend& b, int64_t dk, int64_t dv);

// The query-major kernel (dq, and each row's lse) over `tiles` query tiles, then the key-major kernel (dk and
// dv added into the cache gradients) over `key_tiles` key tiles. g.delta must hold dout . out already.
void attention_backward_mma(moe_backend& b, const AttentionArgs& a, const BackwardArgs& g, unsigned tiles,
                            unsigned key_tiles);

}  // namespace moe_cuda
