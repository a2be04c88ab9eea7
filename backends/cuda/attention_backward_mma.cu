// The attention backward on bf16 tensor cores, FlashAttention-2 style, with every product on register
// fragments (mma_bf16.cuh); the same two kernels and the same math as attention_backward.cu's (see there),
// with q, k, v and dout rounded to bf16 as they are loaded into shared memory, and f32 accumulation,
// softmax and softmax gradient:
//  1. query-major, a block per query tile of 64 rows, a warp per 16 of them: the warp's q and dout rows stay
//     in registers as A fragments. A first pass over the key tiles finds each row's lse (base 2, written for
//     kernel 2); a second computes S = q k^T and dP = dout v^T, turns them into dS in registers and
//     accumulates dq += dS k there.
//  2. key-major, a block per key tile of 64 keys, a warp per 16 of them: the warp's keys and values stay in
//     registers; for each query tile that reaches them it computes S^T = k q^T and dP^T = v dout^T, then
//     P^T and dS^T, and accumulates dv += P^T dout and dk += dS^T q in registers; at the end it adds them
//     into the cache gradients (each key row is written by one warp only).
// No atomics and a fixed order of additions: the same bits on every run.
#include "attention_backward_mma.h"
#include "attention_tile_products.cuh"
#include "mma_bf16.cuh"

namespace moe_cuda {
namespace {

constexpr int kThreads = 128;  // 4 warps of 16 rows (or keys)
constexpr int kTile = kAttentionMmaTile;

// Which operands may be loaded 16 bytes at a time (width % 4 == 0 and 16-byte aligned bases).
struct VectorLoads {
  bool q, dout, k, v;
};

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads) backward_dq_mma(AttentionArgs a, BackwardArgs g, VectorLoads vec) {
  constexpr int kp = DK + 8, vp = DV + 8;
  extern __shared__ uint4 smem_raw[];
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [kTile][kp]
  __nv_bfloat16* dos = qs + kTile * kp;                               // [kTile][vp]
  __nv_bfloat16* ks = dos + kTile * vp;                               // [kTile][kp]
  __nv_bfloat16* vs = ks + kTile * kp;                                // [kTile][vp]
  const AttentionItem it = a.items[g.tile_order[blockIdx.x]];
  const int rows = it.tokens * it.heads;
  load_rows_bf16<kThreads, kTile, DK>(
      [&](int r) -> const float* { return r < rows ? a.q + row_offset(a, it, r) * a.dk : nullptr; }, a.dk, vec.q, qs,
      kp);
  load_rows_bf16<kThreads, kTile, DV>(
      [&](int r) -> const float* { return r < rows ? g.dout + row_offset(a, it, r) * a.dv : nullptr; }, a.dv,
      vec.dout, dos, vp);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, c = lane % 4;
  int row[2], len[2];
  float delta[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row[i] = warp * 16 + lane / 4 + 8 * i;  // the lane's fragment rows g and g + 8
    const bool real = row[i] < rows;
    len[i] = real ? a.kv_len[it.first_token + row[i] / it.heads] : 0;
    delta[i] = real ? g.delta[row_offset(a, it, row[i])] : 0.f;
  }
  const int warp_len = __reduce_max_sync(0xffffffffu, max(len[0], len[1]));
  __syncthreads();
  uint32_t qf[DK / 16][4], dof[DV / 16][4];
  load_a_fragments<DK>(qf, qs, kp, warp * 16);
  load_a_fragments<DV>(dof, dos, vp, warp * 16);
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const float* k_rows = a.k_cache + cache_row(a, it) * a.dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * a.dv;
  auto load_keys = [&](int kb, bool values) {
    const int nk = min(kTile, it.max_len - kb);
    load_rows_bf16<kThreads, kTile, DK>(
        [&](int j) -> const float* { return j < nk ? k_rows + int64_t{kb + j} * a.dk : nullptr; }, a.dk, vec.k, ks,
        kp);
    if (values)
      load_rows_bf16<kThreads, kTile, DV>(
          [&](int j) -> const float* { return j < nk ? v_rows + int64_t{kb + j} * a.dv : nullptr; }, a.dv, vec.v, vs,
          vp);
  };

  // Pass 1: each row's maximum and exp-sum (online, base 2), then its lse.
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  for (int kb = 0; kb < it.max_len; kb += kTile) {
    __syncthreads();
    load_keys(kb, false);
    __syncthreads();
    if (kb >= warp_len) continue;
    float s[kTile / 8][4];
    warp_product_abt<DK, kTile>(s, qf, ks, kp);
    float correction[2];  // nothing else is accumulated in this pass
    online_softmax_block<kTile>(s, kb, len, scale_log2, m, l, correction);
  }
  float lse[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    lse[i] = len[i] > 0 ? m[i] + log2f(l[i]) : 0.f;
    if (c == 0 && row[i] < rows) g.lse[row_offset(a, it, row[i])] = lse[i];
  }

  // Pass 2: dS, and dq += dS . k, key tile by key tile.
  float dq[DK / 8][4];
#pragma unroll
  for (int dt = 0; dt < DK / 8; ++dt) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.f;
  for (int kb = 0; kb < it.max_len; kb += kTile) {
    __syncthreads();
    load_keys(kb, true);
    __syncthreads();
    if (kb >= warp_len) continue;
    float s[kTile / 8][4], dp[kTile / 8][4];
    warp_product_abt<DK, kTile>(s, qf, ks, kp);
    warp_product_abt<DV, kTile>(dp, dof, vs, vp);
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool inside = kb + nt * 8 + 2 * c + (e & 1) < len[e / 2];
        const float p = inside ? exp2f(s[nt][e] * scale_log2 - lse[e / 2]) : 0.f;
        s[nt][e] = inside ? p * (dp[nt][e] - delta[e / 2]) * a.scale : 0.f;  // dS
      }
    warp_product_pb<kTile, DK>(dq, s, ks, kp);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (row[i] >= rows) continue;
    float* out = g.dq + row_offset(a, it, row[i]) * a.dk;
#pragma unroll
    for (int dt = 0; dt < DK / 8; ++dt) {
      const int col = dt * 8 + 2 * c;
      if (col < a.dk) out[col] = dq[dt][2 * i];
      if (col + 1 < a.dk) out[col + 1] = dq[dt][2 * i + 1];
    }
  }
}

template <int DK, int DV>
__global__ void __launch_bounds__(kThreads) backward_dkdv_mma(AttentionArgs a, BackwardArgs g, VectorLoads vec) {
  constexpr int kp = DK + 8, vp = DV + 8;
  extern __shared__ uint4 smem_raw[];
  __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(smem_raw);  // [kTile][kp]
  __nv_bfloat16* vs = ks + kTile * kp;                                // [kTile][vp]
  __nv_bfloat16* qs = vs + kTile * vp;                                // [kTile][kp]
  __nv_bfloat16* dos = qs + kTile * kp;                               // [kTile][vp]
  float* lse_s = reinterpret_cast<float*>(dos + kTile * vp);          // [kTile] each, of the query tile
  float* delta_s = lse_s + kTile;
  int* len_s = reinterpret_cast<int*>(delta_s + kTile);
  const KeyTile kt = g.key_tiles[blockIdx.x];
  const KeyGroup grp = g.groups[kt.group];
  const int kb = kt.key0, count = min(kTile, grp.reach - kb);
  load_rows_bf16<kThreads, kTile, DK>(
      [&](int j) -> const float* { return j < count ? a.k_cache + (grp.cache_row + kb + j) * a.dk : nullptr; }, a.dk,
      vec.k, ks, kp);
  load_rows_bf16<kThreads, kTile, DV>(
      [&](int j) -> const float* { return j < count ? a.v_cache + (grp.cache_row + kb + j) * a.dv : nullptr; }, a.dv,
      vec.v, vs, vp);
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, c = lane % 4;
  const int warp_key0 = kb + warp * 16;
  const int key[2] = {warp_key0 + lane / 4, warp_key0 + lane / 4 + 8};  // the lane's fragment rows
  uint32_t kf[DK / 16][4], vf[DV / 16][4];
  load_a_fragments<DK>(kf, ks, kp, warp * 16);
  load_a_fragments<DV>(vf, vs, vp, warp * 16);
  float dk[DK / 8][4], dv[DV / 8][4];
#pragma unroll
  for (int dt = 0; dt < DK / 8; ++dt) dk[dt][0] = dk[dt][1] = dk[dt][2] = dk[dt][3] = 0.f;
#pragma unroll
  for (int dt = 0; dt < DV / 8; ++dt) dv[dt][0] = dv[dt][1] = dv[dt][2] = dv[dt][3] = 0.f;
  const float scale_log2 = a.scale * 1.4426950408889634f;

  for (int t = grp.first_tile; t < grp.end_tile; ++t) {
    const AttentionItem it = a.items[g.group_tiles[t]];
    if (it.max_len <= kb) continue;  // the same for the whole block: this tile reads none of these keys
    const int rows = it.tokens * it.heads;
    __syncthreads();  // every warp is done with the previous tile's rows
    load_rows_bf16<kThreads, kTile, DK>(
        [&](int r) -> const float* { return r < rows ? a.q + row_offset(a, it, r) * a.dk : nullptr; }, a.dk, vec.q,
        qs, kp);
    load_rows_bf16<kThreads, kTile, DV>(
        [&](int r) -> const float* { return r < rows ? g.dout + row_offset(a, it, r) * a.dv : nullptr; }, a.dv,
        vec.dout, dos, vp);
    load_row_stats(a, g, it, kTile, lse_s, delta_s, len_s);
    __syncthreads();
    if (warp_key0 >= it.max_len) continue;  // the warp's keys are past every row of this tile

    float st[kTile / 8][4], dpt[kTile / 8][4];  // S^T and dP^T: the warp's 16 keys x the tile's 64 rows
    warp_product_abt<DK, kTile>(st, kf, qs, kp);
    warp_product_abt<DV, kTile>(dpt, vf, dos, vp);
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = nt * 8 + 2 * c + (e & 1);
        const bool inside = key[e / 2] < len_s[r];
        const float p = inside ? exp2f(st[nt][e] * scale_log2 - lse_s[r]) : 0.f;
        st[nt][e] = p;                                                         // P^T
        dpt[nt][e] = inside ? p * (dpt[nt][e] - delta_s[r]) * a.scale : 0.f;  // dS^T
      }
    warp_product_pb<kTile, DV>(dv, st, dos, vp);
    warp_product_pb<kTile, DK>(dk, dpt, qs, kp);
  }

  // Into the cache gradients: the lane's two keys, two columns per fragment.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (key[i] - kb >= count) continue;
    float* dk_row = g.dk_cache + (grp.cache_row + key[i]) * a.dk;
    float* dv_row = g.dv_cache + (grp.cache_row + key[i]) * a.dv;
#pragma unroll
    for (int dt = 0; dt < DK / 8; ++dt) {
      const int col = dt * 8 + 2 * c;
      if (col < a.dk) dk_row[col] += dk[dt][2 * i];
      if (col + 1 < a.dk) dk_row[col + 1] += dk[dt][2 * i + 1];
    }
#pragma unroll
    for (int dt = 0; dt < DV / 8; ++dt) {
      const int col = dt * 8 + 2 * c;
      if (col < a.dv) dv_row[col] += dv[dt][2 * i];
      if (col + 1 < a.dv) dv_row[col + 1] += dv[dt][2 * i + 1];
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int DK, int DV>
void launch(moe_backend& b, const AttentionArgs& a, const BackwardArgs& g, unsigned tiles, unsigned key_tiles) {
  const VectorLoads vec{a.dk % 4 == 0 && aligned16(a.q), a.dv % 4 == 0 && aligned16(g.dout),
                        a.dk % 4 == 0 && aligned16(a.k_cache), a.dv % 4 == 0 && aligned16(a.v_cache)};
  const size_t tiles_bytes = 2 * kTile * (DK + 8 + DV + 8) * sizeof(__nv_bfloat16);
  const size_t dkdv_bytes = tiles_bytes + 3 * kTile * sizeof(float);
  allow_shared_memory(reinterpret_cast<const void*>(backward_dq_mma<DK, DV>), tiles_bytes);
  backward_dq_mma<DK, DV><<<tiles, kThreads, tiles_bytes, b.stream>>>(a, g, vec);
  check_launch("attention_backward_dq_mma");
  allow_shared_memory(reinterpret_cast<const void*>(backward_dkdv_mma<DK, DV>), dkdv_bytes);
  backward_dkdv_mma<DK, DV><<<key_tiles, kThreads, dkdv_bytes, b.stream>>>(a, g, vec);
  check_launch("attention_backward_dkdv_mma");
}

}  // namespace

bool attention_backward_mma_fits(const moe_backend& b, int64_t dk, int64_t dv) {
  return attention_forward_mma_fits(b, dk, dv);
}

void attention_backward_mma(moe_backend& b, const AttentionArgs& a, const BackwardArgs& g, unsigned tiles,
                            unsigned key_tiles) {
  if (padded16(a.dk) <= 64 && padded16(a.dv) <= 64)
    launch<64, 64>(b, a, g, tiles, key_tiles);
  else
    launch<128, 128>(b, a, g, tiles, key_tiles);
}

}  // namespace moe_cuda
