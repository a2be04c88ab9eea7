// Warp-level bf16 tensor-core products on register fragments (mma.sync m16n8k16, f32 accumulation) and
// the shared-memory loads that feed them (ldmatrix). Fragment layouts, for lane = 4 g + c:
//   A (16 x 16, row-major): a[0] = rows g, cols 2c..2c+1;   a[1] = row g + 8, cols 2c..;
//                           a[2] = row g, cols 2c + 8..;     a[3] = row g + 8, cols 2c + 8..
//   B (16 x 8, k x n):      b[0] = k 2c..2c+1, col g;        b[1] = k 2c + 8.., col g
//   C (16 x 8, f32):        c[0], c[1] = row g, cols 2c, 2c + 1;  c[2], c[3] = row g + 8, the same cols
// So a C fragment pair (columns 0-7 and 8-15) is, packed to bf16, the A fragment of the next product
// over those 16 columns: flash attention's probabilities never leave registers.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace moe_cuda {

// Two floats as one register of bf16 (lo in the low half: the lower column or k index).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// c += a . b (16 x 8 x 16).
__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory: lanes 8i .. 8i + 7 give the addresses of matrix i's rows
// (16 bytes each, 16-byte aligned); r[i] is matrix i's fragment (row lane / 4, cols 2 (lane % 4) ..).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// The same, each matrix transposed: r[i] = rows 2 (lane % 4) .. + 1 of column lane / 4 of matrix i.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Rows of `Cols` (a multiple of 16) bf16 values at dst (pitch `pitch`), from rows of `width` floats:
// src_row(r) is row r's start, or null for a row of zeros; columns at or past width are zeros.
// Every thread of the block (Threads of them) calls it. `vector`: width % 4 == 0 and every row start is
// 16-byte aligned. Loads are issued in batches before their stores, so that several are in flight.
template <int Threads, int Rows, int Cols, typename RowStart>
__device__ __forceinline__ void load_rows_bf16(RowStart src_row, int width, bool vector, __nv_bfloat16* dst,
                                               int pitch) {
  constexpr int kQuads = Rows * Cols / 4;
  constexpr int kPerThread = (kQuads + Threads - 1) / Threads;
  constexpr int kBatch = kPerThread < 8 ? kPerThread : 8;
#pragma unroll
  for (int u0 = 0; u0 < kPerThread; u0 += kBatch) {
    float4 v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = threadIdx.x + (u0 + u) * Threads;
      v[u] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (i >= kQuads) continue;
      const int r = i / (Cols / 4), c = i % (Cols / 4) * 4;
      const float* s = src_row(r);
      if (!s || c >= width) continue;
      if (vector) {
        v[u] = *reinterpret_cast<const float4*>(s + c);
      } else {
        v[u].x = s[c];
        if (c + 1 < width) v[u].y = s[c + 1];
        if (c + 2 < width) v[u].z = s[c + 2];
        if (c + 3 < width) v[u].w = s[c + 3];
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = threadIdx.x + (u0 + u) * Threads;
      if (i >= kQuads) continue;
      const int r = i / (Cols / 4), c = i % (Cols / 4) * 4;
      *reinterpret_cast<uint2*>(dst + r * pitch + c) = make_uint2(pack_bf16(v[u].x, v[u].y), pack_bf16(v[u].z, v[u].w));
    }
  }
}

// A warp's products for flash attention, on fragments of 16 rows (the warp's) held in registers:
//
// c[n / 8] = a . b^T for N rows of b in shared memory (row j at b + j * pitch, K columns): a [16, K] as
// K / 16 A fragments; c [16, N] as N / 8 C fragments. Scores q . k^T, and dout . v^T.
template <int K, int N>
__device__ __forceinline__ void warp_product_abt(float (&c)[N / 8][4], const uint32_t (&a)[K / 16][4],
                                                 const __nv_bfloat16* b, int pitch) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int nt = 0; nt < N / 8; ++nt) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.f;
#pragma unroll
  for (int kt = 0; kt < K / 16; ++kt)
#pragma unroll
    for (int nt = 0; nt < N / 8; nt += 2) {
      uint32_t f[4];  // rows nt * 8 .. + 15 of b, columns kt * 16 .. + 15: B fragments of tiles nt, nt + 1
      ldmatrix_x4(f, b + ((nt + lane / 16) * 8 + lane % 8) * pitch + kt * 16 + lane / 8 % 2 * 8);
      mma_bf16_16816(c[nt], a[kt], f[0], f[1]);
      mma_bf16_16816(c[nt + 1], a[kt], f[2], f[3]);
    }
}

// c += p . b for p [16, K] given as K / 8 C fragments (f32, rounded to bf16 here: each pair of them is an A
// fragment) and b [K, N] in shared memory (row k at b + k * pitch). Probabilities times values, and the
// gradients' products.
template <int K, int N>
__device__ __forceinline__ void warp_product_pb(float (&c)[N / 8][4], const float (&p)[K / 8][4],
                                                const __nv_bfloat16* b, int pitch) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kt = 0; kt < K / 16; ++kt) {
    const uint32_t a[4] = {pack_bf16(p[2 * kt][0], p[2 * kt][1]), pack_bf16(p[2 * kt][2], p[2 * kt][3]),
                           pack_bf16(p[2 * kt + 1][0], p[2 * kt + 1][1]),
                           pack_bf16(p[2 * kt + 1][2], p[2 * kt + 1][3])};
#pragma unroll
    for (int nt = 0; nt < N / 8; nt += 2) {
      uint32_t f[4];  // rows kt * 16 .. + 15 of b, columns nt * 8 .. + 15, transposed: B fragments
      ldmatrix_x4_trans(f, b + (kt * 16 + lane / 8 % 2 * 8 + lane % 8) * pitch + (nt + lane / 16) * 8);
      mma_bf16_16816(c[nt], a, f[0], f[1]);
      mma_bf16_16816(c[nt + 1], a, f[2], f[3]);
    }
  }
}

// The A fragments of the warp's 16 rows (from row0) of a [rows, K] bf16 tile in shared memory.
template <int K>
__device__ __forceinline__ void load_a_fragments(uint32_t (&a)[K / 16][4], const __nv_bfloat16* tile, int pitch,
                                                 int row0) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kt = 0; kt < K / 16; ++kt)
    ldmatrix_x4(a[kt], tile + (row0 + lane / 8 % 2 * 8 + lane % 8) * pitch + kt * 16 + lane / 16 * 8);
}

// One key block of flash attention's online softmax on a warp's score fragments s [16, N] (keys key0 ..
// key0 + N - 1; the lane's rows g and g + 8 read len[0] and len[1] keys): scales the scores to base 2,
// masks the keys at or past a row's length, raises the rows' running maxima m, rescales their lane-partial
// exp-sums l and adds this block's, and leaves the probabilities exp2(s - base) in s. correction[i] =
// exp2(m_old - m_new) rescales whatever else a row accumulates over the blocks. A row with no key inside yet
// (a padding row) keeps m = -inf and p = 0 (its base is 0, not -inf: no inf - inf).
template <int N>
__device__ __forceinline__ void online_softmax_block(float (&s)[N / 8][4], int key0, const int (&len)[2],
                                                     float scale_log2, float (&m)[2], float (&l)[2],
                                                     float (&correction)[2]) {
  const int c = threadIdx.x % 4;
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < N / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float v = key0 + nt * 8 + 2 * c + (e & 1) < len[e / 2] ? s[nt][e] * scale_log2 : -INFINITY;
      s[nt][e] = v;
      mx[e / 2] = fmaxf(mx[e / 2], v);
    }
  float base[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
    const float m_new = fmaxf(m[i], mx[i]);
    base[i] = m_new == -INFINITY ? 0.f : m_new;
    correction[i] = exp2f(m[i] - base[i]);
    m[i] = m_new;
    l[i] *= correction[i];
  }
#pragma unroll
  for (int nt = 0; nt < N / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float p = exp2f(s[nt][e] - base[e / 2]);
      s[nt][e] = p;
      l[e / 2] += p;
    }
}

}  // namespace moe_cuda
