// Blocked attention with an online softmax (the flash-attention recurrence) for one work item: a set
// of query rows that all read the same cache rows (one slot, one kv head; with GQA the rows of all
// heads of the group, so K and V are loaded once for all of them).
//
// Keys are processed in blocks of kBlockKeys. Each block of K is transposed once into Kt [dk][block]
// so that scores are computed with the key index in the vector lanes (broadcast q[d], FMA with a row
// of Kt): no horizontal sums. Items of one or two query rows (decode) skip the transpose and take one
// dot product per key instead. The softmax runs in base 2 with log2(e) folded into the query scale.
// Per row the running maximum m and sum l rescale the accumulated output O when m grows.
#include "kernels/isa_kernels.h"
#include "kernels/simd.h"

namespace moe_cpu::MOE_CPU_ISA {
namespace {

constexpr int kBlockVectors = 4;
constexpr int64_t kBlockKeys = kBlockVectors * kLanes;
// Query rows per micro-kernel call: rows x 4 accumulators must leave registers for the operands.
constexpr int kRowBlock = kRegisters >= 32 ? 4 : 2;
constexpr float kNegativeInfinity = -__builtin_huge_valf();
// Items of at most this many query rows take their scores straight from the rows of K (scores_direct).
constexpr int64_t kDirectRows = 2;

inline int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

struct Scratch {
  float* q;      // [rows, dk], scaled by scale * log2(e)
  float* kt;     // [dk, kBlockKeys]
  float* v;      // [kBlockKeys, dv_padded] when dv is not a whole number of vectors
  float* o;      // [rows, dv_padded]
  float* s;      // [kRowBlock, kBlockKeys]: scores, then probabilities
  float* m;      // [rows] running maximum (base-2 units)
  float* l;      // [rows] running sum of probabilities
};

// Offsets are kept at 16 floats so that every part starts on a cache line.
Scratch carve(float* base, int64_t rows, int64_t dk, int64_t dv) {
  const int64_t dv_padded = round_up(dv, kLanes);
  Scratch s;
  float* p = base;
  auto take = [&p](int64_t floats) {
    float* at = p;
    p += round_up(floats, 16);
    return at;
  };
  s.q = take(rows * dk);
  s.kt = take(dk * kBlockKeys);
  s.v = take(dv % kLanes ? kBlockKeys * dv_padded : 0);
  s.o = take(rows * dv_padded);
  s.s = take(kRowBlock * kBlockKeys);
  s.m = take(rows);
  s.l = take(rows);
  return s;
}

// Kt[d][j] = K[first + j][d] for j < keys; columns keys..kBlockKeys-1 are zero.
void transpose_keys(const float* k, int64_t dk, int64_t keys, float* kt) {
  int64_t j0 = 0;
  for (; j0 + kLanes <= keys; j0 += kLanes) {
    int64_t d0 = 0;
    for (; d0 + kLanes <= dk; d0 += kLanes) transpose_tile(k + j0 * dk + d0, dk, kt + d0 * kBlockKeys + j0, kBlockKeys);
    for (int64_t d = d0; d < dk; ++d)
      for (int64_t j = j0; j < j0 + kLanes; ++j) kt[d * kBlockKeys + j] = k[j * dk + d];
  }
  for (int64_t d = 0; d < dk; ++d) {
    for (int64_t j = j0; j < keys; ++j) kt[d * kBlockKeys + j] = k[j * dk + d];
    for (int64_t j = keys; j < kBlockKeys; ++j) kt[d * kBlockKeys + j] = 0.f;
  }
}

// s[r][0, NK lanes) = q[r] . Kt for RB query rows (the first NK vectors of keys of the block).
template <int RB, int NK>
void scores(const float* q, int64_t dk, const float* kt, float* s) {
  Vec acc[RB][NK];
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NK; ++j) acc[r][j] = zero();
  for (int64_t d = 0; d < dk; ++d) {
    Vec kv[NK];
    for (int j = 0; j < NK; ++j) kv[j] = load(kt + d * kBlockKeys + j * kLanes);
    for (int r = 0; r < RB; ++r) {
      Vec qv = broadcast(q[r * dk + d]);
      for (int j = 0; j < NK; ++j) acc[r][j] = fmadd(qv, kv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NK; ++j) store(s + r * kBlockKeys + j * kLanes, acc[r][j]);
}

// s[r][j] = q[r] . K[j] for the first `keys` keys, each a dot product straight from its row of K. For
// items of one or two query rows (decode without GQA sharing) this costs less than transposing K:
// the transpose is paid per key, and only a few rows would share it.
template <int RB>
void scores_direct(const float* q, int64_t dk, const float* k, int64_t keys, float* s) {
  for (int64_t j = 0; j < keys; ++j) {
    const float* kr = k + j * dk;
    Vec acc[RB][2];
    for (int r = 0; r < RB; ++r) acc[r][0] = acc[r][1] = zero();
    int64_t d = 0;
    for (; d + 2 * kLanes <= dk; d += 2 * kLanes) {
      const Vec k0 = load(kr + d), k1 = load(kr + d + kLanes);
      for (int r = 0; r < RB; ++r) {
        acc[r][0] = fmadd(load(q + r * dk + d), k0, acc[r][0]);
        acc[r][1] = fmadd(load(q + r * dk + d + kLanes), k1, acc[r][1]);
      }
    }
    for (; d < dk; d += kLanes) {
      const int lanes = dk - d < kLanes ? static_cast<int>(dk - d) : kLanes;
      const Vec k0 = load_partial(kr + d, lanes);
      for (int r = 0; r < RB; ++r) acc[r][0] = fmadd(load_partial(q + r * dk + d, lanes), k0, acc[r][0]);
    }
    for (int r = 0; r < RB; ++r) s[r * kBlockKeys + j] = reduce_add(add(acc[r][0], acc[r][1]));
  }
}

// Scores of the first `keys` keys of the block (rounded up to whole vectors); the rest of s is left
// as it was, and online_softmax_row never reads past a row's valid keys.
template <int RB>
void scores_of(const float* q, int64_t dk, const float* kt, int64_t keys, float* s) {
  static_assert(kBlockVectors == 4, "one case per vector count");
  switch ((keys + kLanes - 1) / kLanes) {
    case 1: scores<RB, 1>(q, dk, kt, s); break;
    case 2: scores<RB, 2>(q, dk, kt, s); break;
    case 3: scores<RB, 3>(q, dk, kt, s); break;
    default: scores<RB, 4>(q, dk, kt, s); break;
  }
}

// o[r][c0 .. c0 + NV lanes) += sum_j p[r][j] * v[j][...] over `keys` keys, for RB rows.
template <int RB, int NV>
void accumulate_values(const float* p, const float* v, int64_t v_stride, int64_t keys, float* o, int64_t o_stride,
                       int64_t c0) {
  Vec acc[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = load(o + r * o_stride + c0 + j * kLanes);
  for (int64_t key = 0; key < keys; ++key) {
    Vec vv[NV];
    for (int j = 0; j < NV; ++j) vv[j] = load(v + key * v_stride + c0 + j * kLanes);
    for (int r = 0; r < RB; ++r) {
      Vec pv = broadcast(p[r * kBlockKeys + key]);
      for (int j = 0; j < NV; ++j) acc[r][j] = fmadd(pv, vv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < RB; ++r)
    for (int j = 0; j < NV; ++j) store(o + r * o_stride + c0 + j * kLanes, acc[r][j]);
}

template <int RB>
void accumulate_values_all(const float* p, const float* v, int64_t v_stride, int64_t keys, float* o,
                           int64_t dv_padded) {
  const int64_t chunk = kBlockVectors * kLanes;
  int64_t c0 = 0;
  for (; c0 + chunk <= dv_padded; c0 += chunk)
    accumulate_values<RB, kBlockVectors>(p, v, v_stride, keys, o, dv_padded, c0);
  switch ((dv_padded - c0) / kLanes) {
    case 1: accumulate_values<RB, 1>(p, v, v_stride, keys, o, dv_padded, c0); break;
    case 2: accumulate_values<RB, 2>(p, v, v_stride, keys, o, dv_padded, c0); break;
    case 3: accumulate_values<RB, 3>(p, v, v_stride, keys, o, dv_padded, c0); break;
    default: break;
  }
}

// Folds one block of scores s (row of kBlockKeys, the first `valid` of which count) into the running
// maximum m, sum l and output o of one row; leaves the probabilities in s (zero past `valid`).
void online_softmax_row(float* s, int64_t valid, float& m, float& l, float* o, int64_t dv_padded) {
  if (valid == 0) {
    for (int64_t j = 0; j < kBlockKeys; j += kLanes) store(s + j, zero());
    return;
  }
  Vec vmax = broadcast(kNegativeInfinity);
  for (int64_t j = 0; j < kBlockKeys; j += kLanes) {
    const int64_t lanes = min64(kLanes, valid - j);
    if (lanes <= 0) break;
    vmax = max(vmax, keep_first(load(s + j), static_cast<int>(lanes), kNegativeInfinity));
  }
  const float block_max = reduce_max(vmax);
  const float new_max = block_max > m ? block_max : m;
  if (l != 0.f && new_max != m) {
    const Vec c = exp2(broadcast(m - new_max));
    l *= reduce_max(c);  // every lane holds the same factor
    for (int64_t j = 0; j < dv_padded; j += kLanes) store(o + j, mul(load(o + j), c));
  }
  m = new_max;
  const Vec shift = broadcast(new_max);
  Vec vsum = zero();
  for (int64_t j = 0; j < kBlockKeys; j += kLanes) {
    const int64_t lanes = valid - j;
    Vec p = lanes <= 0 ? zero() : exp2(sub(load(s + j), shift));
    if (lanes > 0 && lanes < kLanes) p = keep_first(p, static_cast<int>(lanes), 0.f);
    store(s + j, p);
    vsum = add(vsum, p);
  }
  l += reduce_add(vsum);
}

// On the causal diagonal a row block sees only part of the key block: scores and values are taken
// for the keys the block's rows can see (`used`), not the whole block.
// k_rows: the block's rows of K when the scores are taken directly (scores_direct), else null and the
// block is in sc.kt, transposed.
template <int RB>
void row_block(const AttentionItem& it, const Scratch& sc, int64_t r0, int64_t first_key, int64_t keys,
               const float* k_rows, const float* v, int64_t v_stride, int64_t dv_padded) {
  int64_t used = 0;
  for (int r = 0; r < RB; ++r) {
    const int64_t valid = min64(keys, static_cast<int64_t>(it.kv_len[(r0 + r) / it.heads]) - first_key);
    used = valid > used ? valid : used;
  }
  if (k_rows)
    scores_direct<RB>(sc.q + r0 * it.dk, it.dk, k_rows, used, sc.s);
  else
    scores_of<RB>(sc.q + r0 * it.dk, it.dk, sc.kt, used, sc.s);
  for (int r = 0; r < RB; ++r) {
    const int64_t row = r0 + r;
    const int64_t valid = min64(keys, static_cast<int64_t>(it.kv_len[row / it.heads]) - first_key);
    online_softmax_row(sc.s + r * kBlockKeys, valid > 0 ? valid : 0, sc.m[row], sc.l[row], sc.o + row * dv_padded,
                       dv_padded);
  }
  accumulate_values_all<RB>(sc.s, v, v_stride, used, sc.o + r0 * dv_padded, dv_padded);
}

}  // namespace

size_t attention_scratch_floats(int64_t rows, int64_t dk, int64_t dv) {
  const int64_t dv_padded = round_up(dv, kLanes);
  return static_cast<size_t>(round_up(rows * dk, 16) + round_up(dk * kBlockKeys, 16) +
                             round_up(dv % kLanes ? kBlockKeys * dv_padded : 0, 16) + round_up(rows * dv_padded, 16) +
                             round_up(kRowBlock * kBlockKeys, 16) + 2 * round_up(rows, 16));
}

void attention_item(const AttentionItem& it, float* scratch) {
  const int64_t rows = it.tokens * it.heads;
  const int64_t dk = it.dk, dv = it.dv, dv_padded = round_up(dv, kLanes);
  const Scratch sc = carve(scratch, rows, dk, dv);

  const float q_scale = it.scale * kLog2e;
  int64_t longest = 0;
  for (int64_t t = 0; t < it.tokens; ++t) {
    longest = it.kv_len[t] > longest ? it.kv_len[t] : longest;
    for (int64_t g = 0; g < it.heads; ++g) {
      const float* q = it.q + t * it.q_token_stride + g * dk;
      float* qs = sc.q + (t * it.heads + g) * dk;
      for (int64_t d = 0; d < dk; ++d) qs[d] = q[d] * q_scale;
    }
  }
  for (int64_t i = 0; i < rows * dv_padded; ++i) sc.o[i] = 0.f;
  for (int64_t r = 0; r < rows; ++r) {
    sc.m[r] = kNegativeInfinity;
    sc.l[r] = 0.f;
  }

  const bool direct = rows <= kDirectRows;
  for (int64_t first_key = 0; first_key < longest; first_key += kBlockKeys) {
    const int64_t keys = min64(kBlockKeys, longest - first_key);
    const float* k_rows = direct ? it.k + first_key * dk : nullptr;
    if (!direct) transpose_keys(it.k + first_key * dk, dk, keys, sc.kt);
    const float* v = it.v + first_key * dv;
    int64_t v_stride = dv;
    if (dv % kLanes) {  // pad value rows to whole vectors
      for (int64_t j = 0; j < keys; ++j) {
        for (int64_t c = 0; c < dv; ++c) sc.v[j * dv_padded + c] = v[j * dv + c];
        for (int64_t c = dv; c < dv_padded; ++c) sc.v[j * dv_padded + c] = 0.f;
      }
      v = sc.v;
      v_stride = dv_padded;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t rb = min64(kRowBlock, rows - r0);
      // Skip row blocks whose tokens all end before this key block (the causal upper triangle).
      bool any = false;
      for (int64_t r = r0; r < r0 + rb; ++r) any = any || it.kv_len[r / it.heads] > first_key;
      if (!any) continue;
      switch (rb) {
        case 1: row_block<1>(it, sc, r0, first_key, keys, k_rows, v, v_stride, dv_padded); break;
        case 2: row_block<2>(it, sc, r0, first_key, keys, k_rows, v, v_stride, dv_padded); break;
        case 3: row_block<3>(it, sc, r0, first_key, keys, k_rows, v, v_stride, dv_padded); break;
        default: row_block<kRowBlock>(it, sc, r0, first_key, keys, k_rows, v, v_stride, dv_padded); break;
      }
    }
  }

  for (int64_t t = 0; t < it.tokens; ++t) {
    for (int64_t g = 0; g < it.heads; ++g) {
      const int64_t row = t * it.heads + g;
      const float inv = 1.f / sc.l[row];
      const float* o = sc.o + row * dv_padded;
      float* out = it.out + t * it.out_token_stride + g * dv;
      for (int64_t c = 0; c < dv; ++c) out[c] = o[c] * inv;
    }
  }
}

}  // namespace moe_cpu::MOE_CPU_ISA
