// A thin vector layer for the kernels under kernels/, which are compiled twice: with AVX-512
// (x86-64-v4: 16 float lanes, 32 registers) and with AVX2 (x86-64-v3: 8 lanes, 16 registers).
// The kernels are written once against this layer; kLanes and kRegisters tell them how to block.
//
// Everything here lives in the namespace named by MOE_CPU_ISA, so the two copies of every inline
// function are distinct symbols: the linker can never pick an AVX-512 body for the AVX2 path.
// For the same reason the kernel files use no standard-library templates.
#pragma once

#include <immintrin.h>

#include <cstdint>

#ifndef MOE_CPU_ISA
#error "kernels/ sources are compiled once per instruction set with MOE_CPU_ISA defined"
#endif

namespace moe_cpu::MOE_CPU_ISA {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)

constexpr int kLanes = 16;
constexpr int kRegisters = 32;

struct Vec {
  __m512 v;
};

inline __mmask16 lane_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }

inline Vec zero() { return {_mm512_setzero_ps()}; }
inline Vec broadcast(float x) { return {_mm512_set1_ps(x)}; }
inline Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
// Loads lanes [0, n) and zeroes the rest; never touches memory past p + n.
inline Vec load_partial(const float* p, int n) { return {_mm512_maskz_loadu_ps(lane_mask(n), p)}; }
inline void store(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
inline void store_partial(float* p, Vec a, int n) { _mm512_mask_storeu_ps(p, lane_mask(n), a.v); }

// bf16 is the top half of an f32: widening is exact.
inline Vec widen_bf16(__m256i h) { return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))}; }
inline Vec load_bf16(const uint16_t* p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline Vec load_bf16_partial(const uint16_t* p, int n) { return widen_bf16(_mm256_maskz_loadu_epi16(lane_mask(n), p)); }

// Round to nearest even; NaN stays a quiet NaN (the rounding add could carry it into infinity).
inline __m256i narrow_bf16(Vec a) {
  __m512i u = _mm512_castps_si512(a.v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
  __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet));
}
inline void store_bf16(uint16_t* p, Vec a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrow_bf16(a)); }
inline void store_bf16_partial(uint16_t* p, Vec a, int n) { _mm256_mask_storeu_epi16(p, lane_mask(n), narrow_bf16(a)); }

inline Vec add(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
inline Vec sub(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline Vec mul(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline Vec div(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
inline Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
inline Vec min(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
inline Vec fmadd(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline float reduce_add(Vec a) { return _mm512_reduce_add_ps(a.v); }
inline float reduce_max(Vec a) { return _mm512_reduce_max_ps(a.v); }
// Lanes [n, kLanes) replaced by `fill`.
inline Vec keep_first(Vec a, int n, float fill) {
  return {_mm512_mask_blend_ps(lane_mask(n), _mm512_set1_ps(fill), a.v)};
}

// 2^n * p for integer-valued n; scalef saturates to 0 and infinity on its own.
inline Vec scale_by_pow2(Vec p, Vec n) { return {_mm512_scalef_ps(p.v, n.v)}; }
inline Vec round_nearest(Vec a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
constexpr float kExp2Lowest = -160.f;  // scalef flushes to 0 below 2^-149 by itself
constexpr float kExp2Highest = 160.f;

// In-register transpose of a kLanes x kLanes tile: dst[j * dst_stride + i] = src[i * src_stride + j].
inline void transpose_tile(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // Per group g of four source rows: r[4g + c] holds, in 128-bit lane L, column 4L + c of those rows.
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);       // lanes 0, 2 of groups 0 and 1
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);   // lanes 1, 3 of groups 0 and 1
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
  }
  for (int c = 0; c < 4; ++c) {
    _mm512_storeu_ps(dst + (0 + c) * dst_stride, _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88));
    _mm512_storeu_ps(dst + (4 + c) * dst_stride, _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88));
    _mm512_storeu_ps(dst + (8 + c) * dst_stride, _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd));
    _mm512_storeu_ps(dst + (12 + c) * dst_stride, _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd));
  }
}

#elif defined(__AVX2__) && defined(__FMA__)

constexpr int kLanes = 8;
constexpr int kRegisters = 16;

struct Vec {
  __m256 v;
};

inline __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline Vec zero() { return {_mm256_setzero_ps()}; }
inline Vec broadcast(float x) { return {_mm256_set1_ps(x)}; }
inline Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
// Masked-off lanes of vmaskmov never fault, so this never touches memory past p + n.
inline Vec load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, lane_mask(n))}; }
inline void store(float* p, Vec a) { _mm256_storeu_ps(p, a.v); }
inline void store_partial(float* p, Vec a, int n) { _mm256_maskstore_ps(p, lane_mask(n), a.v); }

inline Vec widen_bf16(__m128i h) { return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))}; }
inline Vec load_bf16(const uint16_t* p) { return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
// AVX2 has no 16-bit masked load: go through a zeroed staging copy.
inline Vec load_bf16_partial(const uint16_t* p, int n) {
  alignas(16) uint16_t staged[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) staged[i] = p[i];
  return widen_bf16(_mm_load_si128(reinterpret_cast<const __m128i*>(staged)));
}

inline __m128i narrow_bf16(Vec a) {
  __m256i u = _mm256_castps_si256(a.v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
  __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  __m256i halves = _mm256_blendv_epi8(rounded, quiet, nan);
  // packus works within 128-bit lanes; the permute brings the two packed quarters together.
  __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
  return _mm256_castsi256_si128(packed);
}
inline void store_bf16(uint16_t* p, Vec a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow_bf16(a)); }
inline void store_bf16_partial(uint16_t* p, Vec a, int n) {
  alignas(16) uint16_t staged[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(staged), narrow_bf16(a));
  for (int i = 0; i < n; ++i) p[i] = staged[i];
}

inline Vec add(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
inline Vec sub(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline Vec mul(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline Vec div(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
inline Vec max(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
inline Vec min(Vec a, Vec b) { return {_mm256_min_ps(a.v, b.v)}; }
inline Vec fmadd(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline float reduce_add(Vec a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(Vec a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline Vec keep_first(Vec a, int n, float fill) {
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), a.v, _mm256_castsi256_ps(lane_mask(n)))};
}

// 2^n * p through the exponent field; the caller keeps n within the normal range.
inline Vec scale_by_pow2(Vec p, Vec n) {
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
  return {_mm256_mul_ps(p.v, _mm256_castsi256_ps(e))};
}
inline Vec round_nearest(Vec a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
constexpr float kExp2Lowest = -126.f;  // 2^-126: the smallest normal; below, the result is ~0 anyway
constexpr float kExp2Highest = 127.f;

inline void transpose_tile(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    r[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    r[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    r[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    r[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * dst_stride, _mm256_permute2f128_ps(r[c], r[4 + c], 0x20));
    _mm256_storeu_ps(dst + (4 + c) * dst_stride, _mm256_permute2f128_ps(r[c], r[4 + c], 0x31));
  }
}

#else
#error "kernels/ need AVX2 + FMA at least"
#endif

// 2^x, relative error below 2e-7 over the float range: 2^x = 2^n * 2^f with n = round(x), |f| <= 1/2,
// and 2^f from its degree-7 Taylor series in f*ln2 (truncation error < 6e-9).
inline Vec exp2(Vec x) {
  x = min(max(x, broadcast(kExp2Lowest)), broadcast(kExp2Highest));
  Vec n = round_nearest(x);
  Vec f = sub(x, n);
  Vec p = broadcast(1.5252733804059841e-05f);
  p = fmadd(p, f, broadcast(1.5403530393381609e-04f));
  p = fmadd(p, f, broadcast(1.3333558146428443e-03f));
  p = fmadd(p, f, broadcast(9.6181291076284772e-03f));
  p = fmadd(p, f, broadcast(5.5504108664821580e-02f));
  p = fmadd(p, f, broadcast(2.4022650695910071e-01f));
  p = fmadd(p, f, broadcast(6.9314718055994531e-01f));
  p = fmadd(p, f, broadcast(1.0f));
  return scale_by_pow2(p, n);
}

constexpr float kLog2e = 1.4426950408889634f;

inline Vec exp(Vec x) { return exp2(mul(x, broadcast(kLog2e))); }

}  // namespace moe_cpu::MOE_CPU_ISA
