// attention_backward for one work item: the query rows of one cache slot and kv head (every token of
// the slot, with the query heads of that kv head's group), all reading the same K and V rows. Per row
// with probabilities p over keys j < len (recomputed) and D = dout . out:
//   ds_j = scale * p_j * (dout . v_j - D);  dq = sum_j ds_j k_j;  dK_j += ds_j q;  dV_j += p_j dout.
// Scores and dout . v_j are computed with the key index in the vector lanes (K and V transposed once
// per item, as the forward kernel does), so neither needs a horizontal sum per key; the sums over keys
// (dq) and the rank-1 updates of dK and dV run along the head dimension.
#include "kernels/isa_kernels.h"
#include "kernels/simd.h"

namespace moe_cpu::MOE_CPU_ISA {
namespace {

constexpr int kMaxChunkVectors = 8;
constexpr float kNegativeInfinity = -__builtin_huge_valf();

inline int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// out[j] = sum_d x[d] * t[d * stride + j] for j in [c0, c0 + NV lanes).
template <int NV>
void dot_columns(const float* x, int64_t d_count, const float* t, int64_t stride, int64_t c0, float* out) {
  Vec acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = zero();
  for (int64_t d = 0; d < d_count; ++d) {
    const Vec xd = broadcast(x[d]);
    const float* row = t + d * stride + c0;
    for (int v = 0; v < NV; ++v) acc[v] = fmadd(xd, load(row + v * kLanes), acc[v]);
  }
  for (int v = 0; v < NV; ++v) store(out + c0 + v * kLanes, acc[v]);
}

// out[j] = x . column j of t [d_count][stride], for j < padded (a multiple of kLanes).
void dot_all_columns(const float* x, int64_t d_count, const float* t, int64_t stride, int64_t padded, float* out) {
  int64_t c0 = 0;
  for (; c0 + kMaxChunkVectors * kLanes <= padded; c0 += kMaxChunkVectors * kLanes)
    dot_columns<kMaxChunkVectors>(x, d_count, t, stride, c0, out);
  switch ((padded - c0) / kLanes) {
    case 1: dot_columns<1>(x, d_count, t, stride, c0, out); break;
    case 2: dot_columns<2>(x, d_count, t, stride, c0, out); break;
    case 3: dot_columns<3>(x, d_count, t, stride, c0, out); break;
    case 4: dot_columns<4>(x, d_count, t, stride, c0, out); break;
    case 5: dot_columns<5>(x, d_count, t, stride, c0, out); break;
    case 6: dot_columns<6>(x, d_count, t, stride, c0, out); break;
    case 7: dot_columns<7>(x, d_count, t, stride, c0, out); break;
    default: break;
  }
}

// y[0, n) += a * x[0, n).
inline void axpy(float a, const float* x, float* y, int64_t n) {
  const Vec av = broadcast(a);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(y + i, fmadd(av, load(x + i), load(y + i)));
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    store_partial(y + i, fmadd(av, load_partial(x + i, rest), load_partial(y + i, rest)), rest);
  }
}

inline float dot(const float* a, const float* b, int64_t n) {
  Vec acc = zero();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc = fmadd(load(a + i), load(b + i), acc);
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    acc = fmadd(load_partial(a + i, rest), load_partial(b + i, rest), acc);
  }
  return reduce_add(acc);
}

// t[d * stride + j] = m[j * width + d] for j < rows; columns rows..stride-1 are zero.
void transpose_rows(const float* m, int64_t rows, int64_t width, int64_t stride, float* t) {
  for (int64_t d = 0; d < width; ++d) {
    float* out = t + d * stride;
    for (int64_t j = 0; j < rows; ++j) out[j] = m[j * width + d];
    for (int64_t j = rows; j < stride; ++j) out[j] = 0.f;
  }
}

}  // namespace

size_t attention_backward_scratch_floats(int64_t keys, int64_t dk, int64_t dv) {
  const int64_t padded = round_up(keys, kLanes);
  return static_cast<size_t>((dk + dv + 3) * padded);
}

void attention_backward_item(const AttentionBackwardItem& it, float* scratch) {
  int64_t longest = 0;
  for (int64_t i = 0; i < it.n_tokens; ++i) {
    const int64_t len = it.kv_len[it.tokens[i]];
    longest = len > longest ? len : longest;
  }
  const int64_t stride = round_up(longest, kLanes);
  float* kt = scratch;              // [dk][stride]
  float* vt = kt + it.dk * stride;  // [dv][stride]
  float* p = vt + it.dv * stride;   // [stride] probabilities
  float* dp = p + stride;           // [stride] dout . v_j
  float* ds = dp + stride;          // [stride] score gradients
  transpose_rows(it.k, longest, it.dk, stride, kt);
  transpose_rows(it.v, longest, it.dv, stride, vt);

  for (int64_t i = 0; i < it.n_tokens; ++i) {
    const int64_t t = it.tokens[i];
    const int64_t len = it.kv_len[t], padded = round_up(len, kLanes);
    for (int64_t h = it.head0; h < it.head0 + it.heads; ++h) {
      const int64_t row = t * it.heads_total + h;
      const float* q = it.q + row * it.dk;
      const float* dout = it.dout + row * it.dv;
      float* dq = it.dq + row * it.dk;

      dot_all_columns(q, it.dk, kt, stride, padded, p);
      dot_all_columns(dout, it.dv, vt, stride, padded, dp);
      // Softmax over the first len scores (lanes past len are masked to probability 0).
      const Vec scale = broadcast(it.scale);
      Vec vmax = broadcast(kNegativeInfinity);
      for (int64_t j = 0; j < padded; j += kLanes) {
        Vec s = mul(load(p + j), scale);
        if (len - j < kLanes) s = keep_first(s, static_cast<int>(len - j), kNegativeInfinity);
        store(p + j, s);
        vmax = max(vmax, s);
      }
      const Vec shift = broadcast(reduce_max(vmax));
      Vec vsum = zero();
      for (int64_t j = 0; j < padded; j += kLanes) {
        Vec e = exp(sub(load(p + j), shift));
        if (len - j < kLanes) e = keep_first(e, static_cast<int>(len - j), 0.f);
        store(p + j, e);
        vsum = add(vsum, e);
      }
      const Vec inv = broadcast(1.f / reduce_add(vsum));
      const Vec d_row = broadcast(dot(dout, it.out + row * it.dv, it.dv));
      for (int64_t j = 0; j < padded; j += kLanes) {
        const Vec pj = mul(load(p + j), inv);
        store(p + j, pj);
        store(ds + j, mul(mul(pj, sub(load(dp + j), d_row)), scale));
      }

      for (int64_t d = 0; d < it.dk; ++d) dq[d] = 0.f;
      for (int64_t j = 0; j < len; ++j) {
        axpy(ds[j], it.k + j * it.dk, dq, it.dk);
        axpy(ds[j], q, it.dk_grad + j * it.dk, it.dk);
        axpy(p[j], dout, it.dv_grad + j * it.dv, it.dv);
      }
    }
  }
}

}  // namespace moe_cpu::MOE_CPU_ISA
