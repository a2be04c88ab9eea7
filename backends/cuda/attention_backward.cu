// attention_backward in the FlashAttention-2 style. For a row (token, head) with probabilities
// p_j = exp(scale * q.k_j - lse) over its keys j < kv_len, and D = dout . out:
//   ds_j = scale * p_j * (dout . v_j - D);  dq = sum_j ds_j k_j;  dk_j += sum_rows ds_j q;  dv_j += sum_rows p_j dout.
// Query rows are grouped into tiles of B rows (consecutive tokens of one cache slot, the query heads of one
// kv head: every row of a tile reads the same keys), keys into tiles of B keys. Two kernels:
//  1. query-major, one block per query tile: a first pass over its key tiles finds each row's log-sum-exp
//     (the forward pass keeps none), a second computes P and dS tile by tile and accumulates dq on chip;
//     it writes dq and each row's lse and D.
//  2. key-major, one block per key tile of a (slot, kv head): it holds the tile's keys and values and
//     accumulates their dk and dv on chip while it loops over the query tiles that reach those keys (a
//     causal tile above the diagonal reaches none and is skipped), then adds them into the cache gradients.
// Each output element is written by exactly one block, and each block adds in a fixed order: no atomics,
// no partial buffers, the same bits on every run (bit-exact training resume).
//
// The products of both kernels are tile products in shared memory (attention_tile_products.cuh): exact f32
// arithmetic by default; bf16 tensor cores (operands rounded to bf16 in shared memory, f32 accumulation,
// softmax and its gradient in f32) when the instance computes f32 products on bf16 tensor cores
// (MOE_CUDA_F32_MATH=bf16), the precision of training in bf16; for head dims up to 128 in that mode the
// kernels of attention_backward_mma.cu run instead, with every product on register fragments. Under
// MOE_CUDA_F32_MATH=tf32 the exact path runs: bf16 operands would be coarser than the TF32 the instance
// asked for.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "attention_backward_args.h"
#include "attention_backward_mma.h"
#include "attention_kernels.cuh"
#include "attention_plan.h"
#include "attention_tile_products.cuh"
#include "backend_instance.h"
#include "backend_ops.h"
#include "device_buffer.h"
#include "index_checks.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

constexpr int kBackwardThreads = 256;

// Byte offsets of the shared-memory regions (each on 128 bytes) for tiles of B rows and keys, operands
// of type T. The query-major kernel has no P tile and no dv accumulator.
template <typename T, int B>
struct SmemLayout {
  int kw, vw;  // dk and dv padded to 16
  int kp, vp, bp;
  size_t q, dout, k, v, s, dp, p, ds, acc_k, acc_v, stats, total;

  __host__ __device__ static size_t align(size_t bytes) { return (bytes + 127) / 128 * 128; }
  __host__ __device__ SmemLayout(int dk, int dv, bool key_major) {
    kw = padded16(dk);
    vw = padded16(dv);
    kp = operand_pitch<T>(kw);
    vp = operand_pitch<T>(vw);
    bp = operand_pitch<T>(B);
    size_t o = 0;
    q = o, o += align(sizeof(T) * B * kp);
    dout = o, o += align(sizeof(T) * B * vp);
    k = o, o += align(sizeof(T) * B * kp);
    v = o, o += align(sizeof(T) * B * vp);
    s = o, o += align(sizeof(float) * B * result_pitch(B));
    dp = o, o += align(sizeof(float) * B * result_pitch(B));
    p = o, o += key_major ? align(sizeof(T) * B * bp) : 0;
    ds = o, o += align(sizeof(T) * B * bp);
    acc_k = o, o += align(sizeof(float) * B * result_pitch(kw));
    acc_v = o, o += key_major ? align(sizeof(float) * B * result_pitch(vw)) : 0;
    stats = o, o += align(sizeof(float) * 5 * B);  // m, l, lse, delta, len
    total = o;
  }
};

// Tiles are copied from global to shared memory in two steps, so that a tile's loads are in flight while
// the block computes on the previous one: fetch (each thread issues all its loads, 16 bytes each where the
// rows allow, into registers) and store (converts to the operand type and writes shared memory). A tile
// is B rows of `padded` columns (a multiple of 16), B * padded / 4 quads, at most kFetch per thread.
constexpr int kFetch = 8;
__host__ __device__ constexpr bool fetch_fits(int b, int padded) { return b * padded <= 4 * kFetch * kBackwardThreads; }

struct TileFetch {
  float4 v[kFetch];
};

// Quads of rows: row r of the tile starts at src_row(r) (null past the tile's rows, read as zeros), and
// columns at or past width are zeros. `vector`: every row start is 16-byte aligned and width % 4 == 0.
template <int B, typename RowStart>
__device__ __forceinline__ void fetch_tile(RowStart src_row, int width, int padded, bool vector, TileFetch& f) {
  const int quads = padded / 4;
#pragma unroll
  for (int u = 0; u < kFetch; ++u) {
    const int i = threadIdx.x + u * kBackwardThreads;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (i < B * quads) {
      const int r = i / quads, c = i % quads * 4;
      const float* row = src_row(r);
      if (row && c < width) {
        if (vector) {
          v = *reinterpret_cast<const float4*>(row + c);
        } else {
          v.x = row[c];
          if (c + 1 < width) v.y = row[c + 1];
          if (c + 2 < width) v.z = row[c + 2];
          if (c + 3 < width) v.w = row[c + 3];
        }
      }
    }
    f.v[u] = v;
  }
}

template <typename T, int B>
__device__ __forceinline__ void store_tile(const TileFetch& f, int padded, int pitch, T* dst) {
  const int quads = padded / 4;
#pragma unroll
  for (int u = 0; u < kFetch; ++u) {
    const int i = threadIdx.x + u * kBackwardThreads;
    if (i < B * quads) {
      T* d = dst + i / quads * pitch + i % quads * 4;
      d[0] = from_float<T>(f.v[u].x);
      d[1] = from_float<T>(f.v[u].y);
      d[2] = from_float<T>(f.v[u].z);
      d[3] = from_float<T>(f.v[u].w);
    }
  }
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Row r of a query tile in src ([tokens, heads, width]), null past the tile's rows.
template <int B>
__device__ __forceinline__ void fetch_query_rows(const float* src, const AttentionArgs& a, const AttentionItem& it,
                                                 int width, int padded, TileFetch& f) {
  const int rows = it.tokens * it.heads;
  fetch_tile<B>([&](int r) { return r < rows ? src + row_offset(a, it, r) * width : nullptr; }, width, padded,
                width % 4 == 0 && aligned16(src), f);
}

// Cache rows [0, count) from `rows` (rows of `width` floats), null for the other rows of the B: rows no
// query reads may hold anything (never written), and a zero row keeps them out of the products.
template <int B>
__device__ __forceinline__ void fetch_key_rows(const float* rows, int count, int width, int padded, TileFetch& f) {
  fetch_tile<B>([&](int j) { return j < count ? rows + int64_t{j} * width : nullptr; }, width, padded,
                width % 4 == 0 && aligned16(rows), f);
}

// dst[j][c] += acc[j][c] for j < count, c < width (a key tile's gradient into the cache gradient),
// kFetch loads in flight per thread.
__device__ void add_key_rows(const float* acc, int acc_pitch, int count, int width, float* dst) {
  const int n = count * width;
  for (int i0 = threadIdx.x; i0 < n; i0 += kFetch * kBackwardThreads) {
    float old[kFetch];
#pragma unroll
    for (int u = 0; u < kFetch; ++u) {
      const int i = i0 + u * kBackwardThreads;
      old[u] = i < n ? dst[i] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < kFetch; ++u) {
      const int i = i0 + u * kBackwardThreads;
      if (i < n) dst[i] = old[u] + acc[i / width * acc_pitch + i % width];
    }
  }
}

// delta[row] = dout[row] . out[row] for every (token, head) row, one warp a row, in f32 from the f32 rows
// whatever the products' type.
__global__ void row_deltas(const float* out, const float* dout, int64_t rows, int width, float* delta) {
  const int lane = threadIdx.x % 32;
  for (int64_t row = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32; row < rows;
       row += int64_t{gridDim.x} * blockDim.x / 32) {
    float dot = 0.f;
    for (int c = lane; c < width; c += 32) dot += dout[row * width + c] * out[row * width + c];
    dot = warp_sum(dot);
    if (lane == 0) delta[row] = dot;
  }
}

// P and dS of a (query tile, key tile) pair from the scores S and dP = dout . v in shared memory:
// p = exp(scale * s - lse) and ds = scale * p * (dp - D) where key0 + j < the row's kv_len, else 0
// (chosen, not multiplied: S of a masked key may be anything).
template <typename T, int B>
__device__ void softmax_gradient(const float* s, const float* dp, const float* lse, const float* delta,
                                 const int* len, int key0, float scale, T* p_out, T* ds_out, int bp) {
  for (int i = threadIdx.x; i < B * B; i += blockDim.x) {
    const int r = i / B, j = i % B;
    const bool inside = key0 + j < len[r];
    const float p = inside ? expf(s[r * result_pitch(B) + j] * scale - lse[r]) : 0.f;
    const float ds = inside ? p * (dp[r * result_pitch(B) + j] - delta[r]) * scale : 0.f;
    if (p_out) p_out[r * bp + j] = from_float<T>(p);
    ds_out[r * bp + j] = from_float<T>(ds);
  }
}

template <typename T, int B>
__global__ void __launch_bounds__(kBackwardThreads) attention_backward_dq(AttentionArgs a, BackwardArgs g) {
  extern __shared__ __align__(128) unsigned char smem[];
  const SmemLayout<T, B> L(a.dk, a.dv, false);
  T* qs = reinterpret_cast<T*>(smem + L.q);
  T* dos = reinterpret_cast<T*>(smem + L.dout);
  T* ks = reinterpret_cast<T*>(smem + L.k);
  T* vs = reinterpret_cast<T*>(smem + L.v);
  float* s = reinterpret_cast<float*>(smem + L.s);
  float* dp = reinterpret_cast<float*>(smem + L.dp);
  T* dss = reinterpret_cast<T*>(smem + L.ds);
  float* dq = reinterpret_cast<float*>(smem + L.acc_k);
  float* m = reinterpret_cast<float*>(smem + L.stats);
  float *l = m + B, *lse = l + B, *delta = lse + B;
  int* len = reinterpret_cast<int*>(delta + B);
  const int tile = g.tile_order[blockIdx.x];
  const AttentionItem it = a.items[tile];
  const int rows = it.tokens * it.heads, warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const int dqp = result_pitch(L.kw);
  const float* k_rows = a.k_cache + cache_row(a, it) * a.dk;
  const float* v_rows = a.v_cache + cache_row(a, it) * a.dv;
  TileFetch fk, fv;
  fetch_query_rows<B>(a.q, a, it, a.dk, L.kw, fk);
  fetch_query_rows<B>(g.dout, a, it, a.dv, L.vw, fv);
  store_tile<T, B>(fk, L.kw, L.kp, qs);
  store_tile<T, B>(fv, L.vw, L.vp, dos);
  fetch_key_rows<B>(k_rows, min(B, it.max_len), a.dk, L.kw, fk);
  for (int i = threadIdx.x; i < B * dqp; i += blockDim.x) dq[i] = 0.f;
  for (int r = threadIdx.x; r < B; r += blockDim.x) {
    const bool real = r < rows;
    delta[r] = real ? g.delta[row_offset(a, it, r)] : 0.f;
    len[r] = real ? a.kv_len[it.first_token + r / it.heads] : 0;
    m[r] = -INFINITY;
    l[r] = 0.f;
  }

  // Pass 1: each row's maximum and sum of exponentials (online), then its lse. The next key tile's
  // loads are in flight while this one's scores are computed.
  for (int kb = 0; kb < it.max_len; kb += B) {
    __syncthreads();
    store_tile<T, B>(fk, L.kw, L.kp, ks);
    __syncthreads();
    if (kb + B < it.max_len)
      fetch_key_rows<B>(k_rows + int64_t{kb + B} * a.dk, min(B, it.max_len - kb - B), a.dk, L.kw, fk);
    tile_product<false, true>(s, result_pitch(B), qs, L.kp, ks, L.kp, B, B, L.kw, false);
    __syncthreads();
    for (int r = warp; r < B; r += warps) {
      if (len[r] <= kb) continue;  // the same for the whole warp; key kb is inside the row below
      float mx = -INFINITY;
      for (int j = lane; j < B; j += 32)
        if (kb + j < len[r]) mx = fmaxf(mx, s[r * result_pitch(B) + j] * a.scale);
      const float m_new = fmaxf(m[r], warp_max(mx));
      float sum = 0.f;
      for (int j = lane; j < B; j += 32)
        if (kb + j < len[r]) sum += expf(s[r * result_pitch(B) + j] * a.scale - m_new);
      sum = warp_sum(sum);
      __syncwarp();  // every lane has read m[r] before lane 0 replaces it (racecheck's hazard otherwise)
      if (lane == 0) {
        l[r] = l[r] * expf(m[r] - m_new) + sum;
        m[r] = m_new;
      }
    }
  }
  fetch_key_rows<B>(k_rows, min(B, it.max_len), a.dk, L.kw, fk);
  fetch_key_rows<B>(v_rows, min(B, it.max_len), a.dv, L.vw, fv);
  __syncthreads();
  for (int r = threadIdx.x; r < B; r += blockDim.x) {
    lse[r] = len[r] > 0 ? m[r] + logf(l[r]) : 0.f;
    if (r < rows) g.lse[row_offset(a, it, r)] = lse[r];
  }

  // Pass 2: P, dS and dq += dS . K, key tile by key tile.
  for (int kb = 0; kb < it.max_len; kb += B) {
    __syncthreads();
    store_tile<T, B>(fk, L.kw, L.kp, ks);
    store_tile<T, B>(fv, L.vw, L.vp, vs);
    __syncthreads();
    if (kb + B < it.max_len) {
      const int next = min(B, it.max_len - kb - B);
      fetch_key_rows<B>(k_rows + int64_t{kb + B} * a.dk, next, a.dk, L.kw, fk);
      fetch_key_rows<B>(v_rows + int64_t{kb + B} * a.dv, next, a.dv, L.vw, fv);
    }
    tile_product<false, true>(s, result_pitch(B), qs, L.kp, ks, L.kp, B, B, L.kw, false);
    tile_product<false, true>(dp, result_pitch(B), dos, L.vp, vs, L.vp, B, B, L.vw, false);
    __syncthreads();
    softmax_gradient<T, B>(s, dp, lse, delta, len, kb, a.scale, static_cast<T*>(nullptr), dss, L.bp);
    __syncthreads();
    tile_product<false, false>(dq, dqp, dss, L.bp, ks, L.kp, B, L.kw, B, true);
  }
  __syncthreads();
  for (int i = threadIdx.x; i < rows * a.dk; i += blockDim.x) {
    const int r = i / a.dk, c = i % a.dk;
    g.dq[row_offset(a, it, r) * a.dk + c] = dq[r * dqp + c];
  }
}

template <typename T, int B>
__global__ void __launch_bounds__(kBackwardThreads) attention_backward_dkdv(AttentionArgs a, BackwardArgs g) {
  extern __shared__ __align__(128) unsigned char smem[];
  const SmemLayout<T, B> L(a.dk, a.dv, true);
  T* qs = reinterpret_cast<T*>(smem + L.q);
  T* dos = reinterpret_cast<T*>(smem + L.dout);
  T* ks = reinterpret_cast<T*>(smem + L.k);
  T* vs = reinterpret_cast<T*>(smem + L.v);
  float* s = reinterpret_cast<float*>(smem + L.s);
  float* dp = reinterpret_cast<float*>(smem + L.dp);
  T* ps = reinterpret_cast<T*>(smem + L.p);
  T* dss = reinterpret_cast<T*>(smem + L.ds);
  float* dk = reinterpret_cast<float*>(smem + L.acc_k);
  float* dv = reinterpret_cast<float*>(smem + L.acc_v);
  float* lse = reinterpret_cast<float*>(smem + L.stats);
  float* delta = lse + B;
  int* len = reinterpret_cast<int*>(delta + B);
  const KeyTile kt = g.key_tiles[blockIdx.x];
  const KeyGroup grp = g.groups[kt.group];
  const int kb = kt.key0, count = min(B, grp.reach - kb);
  const int dkp = result_pitch(L.kw), dvp = result_pitch(L.vw);
  TileFetch fq, fo;  // the next query tile's q and dout rows
  fetch_key_rows<B>(a.k_cache + (grp.cache_row + kb) * a.dk, count, a.dk, L.kw, fq);
  fetch_key_rows<B>(a.v_cache + (grp.cache_row + kb) * a.dv, count, a.dv, L.vw, fo);
  store_tile<T, B>(fq, L.kw, L.kp, ks);
  store_tile<T, B>(fo, L.vw, L.vp, vs);
  for (int i = threadIdx.x; i < B * dkp; i += blockDim.x) dk[i] = 0.f;
  for (int i = threadIdx.x; i < B * dvp; i += blockDim.x) dv[i] = 0.f;
  // The query tiles that reach these keys (max_len > kb), in the group's order.
  auto reaching = [&](int t) {
    while (t < grp.end_tile && a.items[g.group_tiles[t]].max_len <= kb) ++t;
    return t;
  };
  int t = reaching(grp.first_tile);
  if (t < grp.end_tile) {
    const AttentionItem first = a.items[g.group_tiles[t]];
    fetch_query_rows<B>(a.q, a, first, a.dk, L.kw, fq);
    fetch_query_rows<B>(g.dout, a, first, a.dv, L.vw, fo);
  }
  while (t < grp.end_tile) {
    const AttentionItem it = a.items[g.group_tiles[t]];
    __syncthreads();  // the previous tile's products are done with qs, dos, ps and dss
    store_tile<T, B>(fq, L.kw, L.kp, qs);
    store_tile<T, B>(fo, L.vw, L.vp, dos);
    load_row_stats(a, g, it, B, lse, delta, len);
    __syncthreads();
    t = reaching(t + 1);
    if (t < grp.end_tile) {  // in flight during this tile's products
      const AttentionItem next = a.items[g.group_tiles[t]];
      fetch_query_rows<B>(a.q, a, next, a.dk, L.kw, fq);
      fetch_query_rows<B>(g.dout, a, next, a.dv, L.vw, fo);
    }
    tile_product<false, true>(s, result_pitch(B), qs, L.kp, ks, L.kp, B, B, L.kw, false);
    tile_product<false, true>(dp, result_pitch(B), dos, L.vp, vs, L.vp, B, B, L.vw, false);
    __syncthreads();
    softmax_gradient<T, B>(s, dp, lse, delta, len, kb, a.scale, ps, dss, L.bp);
    __syncthreads();
    tile_product<true, false>(dv, dvp, ps, L.bp, dos, L.vp, B, L.vw, B, true);
    tile_product<true, false>(dk, dkp, dss, L.bp, qs, L.kp, B, L.kw, B, true);
  }
  __syncthreads();
  add_key_rows(dk, dkp, count, a.dk, g.dk_cache + (grp.cache_row + kb) * a.dk);
  add_key_rows(dv, dvp, count, a.dv, g.dv_cache + (grp.cache_row + kb) * a.dv);
}

template <typename T, int B>
size_t shared_bytes(const KvCacheShape& c) {
  return std::max(SmemLayout<T, B>(static_cast<int>(c.dk), static_cast<int>(c.dv), false).total,
                  SmemLayout<T, B>(static_cast<int>(c.dk), static_cast<int>(c.dv), true).total);
}

template <typename T, int B>
void run_backward(moe_backend& b, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                  const moe_tensor* slot, const moe_tensor* kv_len, float scale, const moe_tensor* out,
                  const moe_tensor* dout, moe_tensor* dq, moe_tensor* dk_cache, moe_tensor* dv_cache,
                  const KvCacheShape& c) {
  // Query tiles of at most B rows: attention_plan.h's items, after the forward pass's checks.
  const std::vector<AttentionItem> tiles =
      plan_attention(b, q, c, slot, kv_len, scale, B, "the CUDA backend's attention_backward").items;
  if (tiles.empty()) {  // no rows, or dv = 0: every gradient is zero
    const size_t bytes = static_cast<size_t>(q->shape[0] * q->shape[1] * c.dk) * sizeof(float);
    if (bytes) check_cuda(cudaMemsetAsync(dq->data, 0, bytes, b.stream), "cudaMemsetAsync");
    return;
  }
  // The query-major blocks, longest rows first (the last blocks to start should be short ones).
  std::vector<int32_t> order(tiles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t x, int32_t y) { return tiles[x].max_len > tiles[y].max_len; });
  // The tiles of each (slot, kv head) in tile order, and the key tiles each group needs, those nearest the
  // start first (under causal masks they are read by the most query tiles).
  std::map<int64_t, std::vector<int32_t>> tiles_of_block;
  for (size_t i = 0; i < tiles.size(); ++i)
    tiles_of_block[(int64_t{tiles[i].slot} * c.kv_heads + tiles[i].kv_head) * c.capacity].push_back(
        static_cast<int32_t>(i));
  std::vector<KeyGroup> groups;
  std::vector<int32_t> group_tiles;
  std::vector<KeyTile> key_tiles;
  for (const auto& [row, list] : tiles_of_block) {
    KeyGroup g{row, 0, static_cast<int32_t>(group_tiles.size()), 0};
    for (int32_t i : list) g.reach = std::max(g.reach, tiles[i].max_len);
    group_tiles.insert(group_tiles.end(), list.begin(), list.end());
    g.end_tile = static_cast<int32_t>(group_tiles.size());
    for (int32_t k0 = 0; k0 < g.reach; k0 += B) key_tiles.push_back({static_cast<int32_t>(groups.size()), k0});
    groups.push_back(g);
  }
  std::stable_sort(key_tiles.begin(), key_tiles.end(), [](const KeyTile& x, const KeyTile& y) { return x.key0 < y.key0; });

  const int64_t rows = q->shape[0] * q->shape[1];
  const DeviceBuffer d_tiles = upload_vector(b, tiles), d_order = upload_vector(b, order),
                     d_groups = upload_vector(b, groups), d_group_tiles = upload_vector(b, group_tiles),
                     d_key_tiles = upload_vector(b, key_tiles);
  DeviceBuffer lse(b, static_cast<size_t>(rows) * sizeof(float)), delta(b, static_cast<size_t>(rows) * sizeof(float));
  const AttentionArgs args = attention_args(q, k_cache, v_cache, kv_len, c, scale, d_tiles.as<AttentionItem>());
  const BackwardArgs grads{data_of<const float>(out),         data_of<const float>(dout),
                           data_of<float>(dq),                static_cast<float*>(dk_cache->data),
                           static_cast<float*>(dv_cache->data), lse.as<float>(),
                           delta.as<float>(),                 d_order.as<const int32_t>(),
                           d_groups.as<const KeyGroup>(),     d_group_tiles.as<const int32_t>(),
                           d_key_tiles.as<const KeyTile>()};
  const int dk = static_cast<int>(c.dk), dv = static_cast<int>(c.dv);
  const size_t query_smem = SmemLayout<T, B>(dk, dv, false).total, key_smem = SmemLayout<T, B>(dk, dv, true).total;
  row_deltas<<<grid_for(rows * 32), kThreads, 0, b.stream>>>(grads.out, grads.dout, rows, dv, grads.delta);
  check_launch("row_deltas");
  if constexpr (std::is_same_v<T, __nv_bfloat16> && B == kAttentionMmaTile) {
    if (attention_backward_mma_fits(b, c.dk, c.dv)) {
      attention_backward_mma(b, args, grads, static_cast<unsigned>(tiles.size()),
                             static_cast<unsigned>(key_tiles.size()));
      return;
    }
  }
  allow_shared_memory(reinterpret_cast<const void*>(attention_backward_dq<T, B>), query_smem);
  attention_backward_dq<T, B>
      <<<static_cast<unsigned>(tiles.size()), kBackwardThreads, query_smem, b.stream>>>(args, grads);
  check_launch("attention_backward_dq");
  allow_shared_memory(reinterpret_cast<const void*>(attention_backward_dkdv<T, B>), key_smem);
  attention_backward_dkdv<T, B>
      <<<static_cast<unsigned>(key_tiles.size()), kBackwardThreads, key_smem, b.stream>>>(args, grads);
  check_launch("attention_backward_dkdv");
}

// Tiles of 64 rows and keys where their shared memory fits the device (and their copies kFetch quads a
// thread), else 32.
template <typename T>
void run_backward_tiled(moe_backend& b, const KvCacheShape& c, const moe_tensor* q, const moe_tensor* k_cache,
                        const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len, float scale,
                        const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq, moe_tensor* dk_cache,
                        moe_tensor* dv_cache) {
  int limit = 0;
  check_cuda(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, b.device),
             "cudaDeviceGetAttribute(shared memory per block)");
  const int widest = padded16(static_cast<int>(std::max(c.dk, c.dv)));
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (attention_backward_mma_fits(b, c.dk, c.dv))  // register fragments: tiles of 64, shared memory fits
      return run_backward<T, kAttentionMmaTile>(b, q, k_cache, v_cache, slot, kv_len, scale, out, dout, dq, dk_cache,
                                                dv_cache, c);
  }
  if (shared_bytes<T, 64>(c) <= static_cast<size_t>(limit) && fetch_fits(64, widest))
    run_backward<T, 64>(b, q, k_cache, v_cache, slot, kv_len, scale, out, dout, dq, dk_cache, dv_cache, c);
  else if (shared_bytes<T, 32>(c) <= static_cast<size_t>(limit) && fetch_fits(32, widest))
    run_backward<T, 32>(b, q, k_cache, v_cache, slot, kv_len, scale, out, dout, dq, dk_cache, dv_cache, c);
  else
    fail(MOE_ERR_UNSUPPORTED, "attention_backward with dk=" + std::to_string(c.dk) + ", dv=" + std::to_string(c.dv) +
                                  " needs " + std::to_string(shared_bytes<T, 32>(c)) +
                                  " bytes of shared memory per block; this device has " + std::to_string(limit));
}

}  // namespace

moe_status cuda_attention_backward(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                   const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                   float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                   moe_tensor* dk_cache, moe_tensor* dv_cache) {
  return guarded(be, [&](moe_backend& b) {
    const KvCacheShape c = check_kv_caches(k_cache, v_cache);
    const KvCacheShape gc = check_kv_caches(dk_cache, dv_cache);
    if (gc.slots != c.slots || gc.kv_heads != c.kv_heads || gc.capacity != c.capacity || gc.dk != c.dk ||
        gc.dv != c.dv)
      invalid("dk_cache " + shape_string(*dk_cache) + " and dv_cache " + shape_string(*dv_cache) +
              " must have the caches' shapes " + shape_string(*k_cache) + ", " + shape_string(*v_cache));
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    const int64_t tokens = q->shape[0], heads = q->shape[1];
    for (auto [t, name, width] : {std::tuple{q, "q", c.dk}, std::tuple{static_cast<const moe_tensor*>(dq), "dq", c.dk},
                                  std::tuple{out, "out", c.dv}, std::tuple{dout, "dout", c.dv}}) {
      check_tensor(t, name, MOE_DTYPE_F32, 3);
      if (t->shape[0] != tokens || t->shape[1] != heads || t->shape[2] != width)
        invalid(std::string(name) + " " + shape_string(*t) + " must be [tokens = " + std::to_string(tokens) +
                ", heads = " + std::to_string(heads) + ", " + std::to_string(width) + "]");
    }
    if (b.f32_compute == CUBLAS_COMPUTE_32F_FAST_16BF)
      run_backward_tiled<__nv_bfloat16>(b, c, q, k_cache, v_cache, slot, kv_len, scale, out, dout, dq, dk_cache,
                                        dv_cache);
    else
      run_backward_tiled<float>(b, c, q, k_cache, v_cache, slot, kv_len, scale, out, dout, dq, dk_cache, dv_cache);
  });
}

}  // namespace moe_cuda
