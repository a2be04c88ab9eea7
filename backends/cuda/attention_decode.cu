// Flash decoding (attention_decode.h):
//  - decode_split: block (token, kv head, group of up to kDecodeHeads query heads of that kv head, split)
//    scores its split's kDecodeChunk keys against the query heads (a warp takes 4 keys at a time, the lanes
//    over the head dim), takes each head's maximum and exp-sum over the split, and writes the split's
//    unnormalised output with (max, sum) to a partials buffer; short splits keep many blocks busy on
//    short contexts, so that no block walks a long chain of dependent loads;
//  - the combine rescales the splits' partials to the common maximum and divides by the total sum, in a
//    fixed order (the result does not depend on scheduling). While a step is recorded it runs in the
//    decode_split launch itself: each block counts itself done in a per-(token, kv head, head group)
//    counter, and the last block of the group combines its heads and sets the counter back to zero for
//    the next replay (one launch a layer instead of two). Otherwise decode_combine does it, one block per
//    (token, head).
// Everything is f32, as the op table asks.
#include <algorithm>
#include <optional>
#include <string>

#include "attention_decode.h"
#include "attention_decode_short.h"
#include "attention_plan.h"
#include "device_buffer.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "pdl_launch.cuh"
#include "recording.h"
#include "tensor_checks.h"

namespace moe_cuda {
namespace {

constexpr int kDecodeChunk = 64;   // keys per split
constexpr int kDecodeHeads = 8;    // query heads per block
constexpr int kDecodeThreads = 128;
constexpr int kDecodeWarps = kDecodeThreads / 32;
constexpr int kKeysPerWarpStep = 4;  // keys a warp loads before it reduces their scores
constexpr int64_t kMaxPartialBytes = int64_t{256} << 20;
// While recording, partials up to this size are memory the step owns (no allocation nodes in the graph
// between the kernels); larger ones (long MLA caches) stay stream-ordered temporaries.
constexpr int64_t kMaxStepPartialBytes = int64_t{4} << 20;

struct DecodeArgs {
  const float* q;
  const float* k_cache;
  const float* v_cache;
  const int32_t* slot;
  const int32_t* kv_len;
  float* partial_out;  // [tokens, heads, splits, dv]
  float* partial_ml;   // [tokens, heads, splits, 2]: the split's maximum score and its exp-sum
  float* out;          // [tokens, heads, dv], from token_base on
  unsigned* done;      // [tokens, kv_heads, head_blocks] zeroed counters: combine in decode_split; or null
  IndexError* errors;
  int heads, kv_heads, group, head_blocks, dk, dv, slots, capacity, splits;
  int q_floats;    // shared memory before the scores: the queries, later the value sums' parts
  int token_base;  // the launch covers tokens [token_base, ...): q, slot, kv_len start there (for reports)
  float scale;
};

// The token's slot and kv_len when both are valid; a block that finds one bad reports it (only the first
// block of the token, so that the report names the first bad entry of the token) and exits.
__device__ __forceinline__ bool token_ok(const DecodeArgs& a, int t, bool reporter, int& s, int& len) {
  s = a.slot[t];
  len = a.kv_len[t];
  IndexError* e = reporter ? a.errors : nullptr;
  return index_ok(e, IndexCheck::kAttentionSlot, a.token_base + t, -1, s, 0, a.slots - 1) &&
         index_ok(e, IndexCheck::kAttentionKvLen, a.token_base + t, -1, len, 1, a.capacity);
}

// Head h of token t: the splits' partials below kv_len = len rescaled to their common maximum, summed in
// split order and divided by the total exp-sum, into a.out, by the block's threads. Loads bypass L1: in
// decode_split the partials were written by other blocks of the launch.
__device__ void combine_head(const DecodeArgs& a, int t, int h, int len) {
  const int used = (len + kDecodeChunk - 1) / kDecodeChunk;
  const float* ml = a.partial_ml + (int64_t{t} * a.heads + h) * a.splits * 2;
  float m = -INFINITY;
  for (int sp = 0; sp < used; ++sp) m = fmaxf(m, __ldcg(ml + 2 * sp));
  float l = 0.f;
  for (int sp = 0; sp < used; ++sp) l += __ldcg(ml + 2 * sp + 1) * expf(__ldcg(ml + 2 * sp) - m);
  const float* po = a.partial_out + (int64_t{t} * a.heads + h) * a.splits * a.dv;
  for (int c = threadIdx.x; c < a.dv; c += blockDim.x) {
    float acc = 0.f;
    for (int sp = 0; sp < used; ++sp) acc += __ldcg(po + int64_t{sp} * a.dv + c) * expf(__ldcg(ml + 2 * sp) - m);
    a.out[(int64_t{t} * a.heads + h) * a.dv + c] = acc / l;
  }
}

// One block's split: its partials (nothing when the split lies past kv_len).
template <int DimChunks>
__device__ __forceinline__ void split_partials(const DecodeArgs& a, float* smem, int t, int kvh, int hb, int split,
                                               int s, int len) {
  const int k0 = split * kDecodeChunk;
  if (k0 >= len) return;  // past the token's keys: the combine reads only the splits below kv_len
  const int nk = min(kDecodeChunk, len - k0);
  const int h0 = kvh * a.group + hb * kDecodeHeads, nh = min(kDecodeHeads, a.group - hb * kDecodeHeads);
  const int dk = a.dk, dv = a.dv;
  float* qs = smem;                  // [kDecodeHeads][dk] (q_floats)
  float* ps = qs + a.q_floats;       // [kDecodeHeads][kDecodeChunk]: scores, then probabilities
  const float* qt = a.q + (int64_t{t} * a.heads + h0) * dk;
  for (int i = threadIdx.x; i < nh * dk; i += kDecodeThreads) qs[i] = qt[i];
  __syncthreads();

  const int64_t cache_row = (int64_t{s} * a.kv_heads + kvh) * a.capacity + k0;
  const float* keys = a.k_cache + cache_row * dk;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int j0 = warp * kKeysPerWarpStep; j0 < nk; j0 += kDecodeWarps * kKeysPerWarpStep) {
    float kr[kKeysPerWarpStep][DimChunks];
#pragma unroll
    for (int u = 0; u < kKeysPerWarpStep; ++u)
#pragma unroll
      for (int c = 0; c < DimChunks; ++c)
        kr[u][c] = j0 + u < nk && lane + 32 * c < dk ? keys[int64_t{j0 + u} * dk + lane + 32 * c] : 0.f;
    for (int g = 0; g < nh; ++g) {
#pragma unroll
      for (int u = 0; u < kKeysPerWarpStep; ++u) {
        float dot = 0.f;
#pragma unroll
        for (int c = 0; c < DimChunks; ++c)
          if (lane + 32 * c < dk) dot += kr[u][c] * qs[g * dk + lane + 32 * c];
        dot = warp_sum(dot);
        if (lane == 0 && j0 + u < nk) ps[g * kDecodeChunk + j0 + u] = dot * a.scale;
      }
    }
  }
  __syncthreads();

  // Each head's maximum and exp-sum over the split (one warp per head).
  for (int g = warp; g < nh; g += kDecodeWarps) {
    float m, l;
    warp_exp_shifted(ps + g * kDecodeChunk, nk, m, l);
    if (lane == 0) {
      float* ml = a.partial_ml + ((int64_t{t} * a.heads + h0 + g) * a.splits + split) * 2;
      ml[0] = m;
      ml[1] = l;
    }
  }
  __syncthreads();

  // The split's weighted sum of values: a thread per (head, output column) and part of the keys (when
  // the block has more threads than outputs); the parts' sums are added in part order.
  const float* values = a.v_cache + cache_row * dv;
  const int outputs = nh * dv, parts = max(1, kDecodeThreads / outputs);
  float* part_sums = qs;  // the queries are no longer needed: [parts][outputs] when parts > 1
  for (int i = threadIdx.x; i < outputs * parts && i < max(outputs, kDecodeThreads); i += kDecodeThreads) {
    const int o = i % outputs, part = i / outputs, g = o / dv, c = o % dv;
    const float* p = ps + g * kDecodeChunk;
    float acc = 0.f;
#pragma unroll 8
    for (int j = part; j < nk; j += parts) acc += p[j] * values[int64_t{j} * dv + c];
    if (parts == 1)
      a.partial_out[((int64_t{t} * a.heads + h0 + g) * a.splits + split) * dv + c] = acc;
    else
      part_sums[part * outputs + o] = acc;
  }
  if (parts == 1) return;
  __syncthreads();
  for (int o = threadIdx.x; o < outputs; o += kDecodeThreads) {
    float acc = 0.f;
    for (int part = 0; part < parts; ++part) acc += part_sums[part * outputs + o];
    const int g = o / dv, c = o % dv;
    a.partial_out[((int64_t{t} * a.heads + h0 + g) * a.splits + split) * dv + c] = acc;
  }
}

// DimChunks: registers per lane for one key row (dk <= 32 * DimChunks).
template <int DimChunks>
__global__ void __launch_bounds__(kDecodeThreads) decode_split(DecodeArgs a) {
  extern __shared__ float smem[];
  __shared__ bool last;
  pdl_wait_and_release();
  const int hb = blockIdx.x % a.head_blocks, kvh = blockIdx.x / a.head_blocks % a.kv_heads;
  const int t = blockIdx.x / (a.head_blocks * a.kv_heads), split = blockIdx.y;
  int s, len;
  // Every block of the token finds the same slot and kv_len: all leave here, or none (the counter holds).
  if (!token_ok(a, t, blockIdx.x % (a.head_blocks * a.kv_heads) == 0 && split == 0 && threadIdx.x == 0, s, len))
    return;
  split_partials<DimChunks>(a, smem, t, kvh, hb, split, s, len);
  if (!a.done) return;
  // The partials written above are visible device-wide before this block counts itself done; the block
  // that counts last sees every split's partials.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned before = atomicAdd(&a.done[blockIdx.x], 1u);
    last = before == gridDim.y - 1;
    if (last) a.done[blockIdx.x] = 0;  // every split has counted: ready for the next launch
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int h0 = kvh * a.group + hb * kDecodeHeads, nh = min(kDecodeHeads, a.group - hb * kDecodeHeads);
  for (int g = 0; g < nh; ++g) combine_head(a, t, h0 + g, len);
}

__global__ void __launch_bounds__(kDecodeThreads) decode_combine(DecodeArgs a) {
  pdl_wait_and_release();
  const int t = blockIdx.x / a.heads, h = blockIdx.x % a.heads;
  int s, len;
  if (!token_ok(a, t, false, s, len)) return;  // decode_split reported it
  combine_head(a, t, h, len);
}

}  // namespace

void attention_decode(moe_backend& be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                      const KvCacheShape& c, const moe_tensor* slot, const moe_tensor* kv_len, float scale,
                      moe_tensor* out, bool device_checks) {
  const int64_t tokens = q->shape[0], heads = q->shape[1];
  if (check_tensor(slot, "slot", MOE_DTYPE_I32, -1) != tokens || check_tensor(kv_len, "kv_len", MOE_DTYPE_I32, -1) != tokens)
    invalid("slot " + shape_string(*slot) + " and kv_len " + shape_string(*kv_len) +
            " must have one entry per token (" + std::to_string(tokens) + ")");
  if (tokens == 0 || heads == 0 || c.dv == 0) return;
  if (c.slots > INT32_MAX || tokens > INT32_MAX)
    fail(MOE_ERR_UNSUPPORTED, "attention over more than 2^31 - 1 cache slots or tokens");
  // Short caches while recording: one pass, no partials (attention_decode_short.h).
  if (device_checks && recording(be) &&
      attention_decode_short(be, q, k_cache, v_cache, c, slot, kv_len, scale, out, device_index_errors(be)))
    return;
  DecodeArgs a{};
  a.q = data_of<const float>(q);
  a.k_cache = data_of<const float>(k_cache);
  a.v_cache = data_of<const float>(v_cache);
  a.slot = data_of<const int32_t>(slot);
  a.kv_len = data_of<const int32_t>(kv_len);
  a.errors = device_checks ? device_index_errors(be) : nullptr;
  a.heads = static_cast<int>(heads);
  a.kv_heads = static_cast<int>(c.kv_heads);
  a.group = static_cast<int>(heads / c.kv_heads);
  a.head_blocks = (a.group + kDecodeHeads - 1) / kDecodeHeads;
  a.dk = static_cast<int>(c.dk);
  a.dv = static_cast<int>(c.dv);
  a.slots = static_cast<int>(c.slots);
  a.capacity = static_cast<int>(c.capacity);
  a.splits = static_cast<int>((c.capacity + kDecodeChunk - 1) / kDecodeChunk);
  a.scale = scale;
  a.q_floats = std::max(kDecodeHeads * a.dk, kDecodeThreads);
  // The partials hold every split of every (token, head): launches of at most kMaxPartialBytes of them (a
  // decode step is one launch; a long prefill over MLA's latent cache is several).
  const int64_t per_token = heads * a.splits * (c.dv + 2) * int64_t{sizeof(float)};
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(tokens, kMaxPartialBytes / per_token));
  if (chunk * c.kv_heads * a.head_blocks > INT32_MAX || a.splits > 65535 || chunk * heads > INT32_MAX)
    fail(MOE_ERR_UNSUPPORTED, "attention over a cache of " + std::to_string(c.capacity) + " positions and " +
                                  std::to_string(heads) + " heads is beyond this kernel's launch limits");
  const size_t out_bytes = static_cast<size_t>(chunk * heads * a.splits * c.dv) * sizeof(float);
  const size_t ml_bytes = static_cast<size_t>(chunk * heads * a.splits * 2) * sizeof(float);
  std::optional<DeviceBuffer> partial_out, partial_ml;
  if (recording(be) && static_cast<int64_t>(out_bytes + ml_bytes) <= kMaxStepPartialBytes) {
    a.partial_out = static_cast<float*>(step_scratch(be, out_bytes));
    a.partial_ml = static_cast<float*>(step_scratch(be, ml_bytes));
  } else {
    a.partial_out = partial_out.emplace(be, out_bytes).as<float>();
    a.partial_ml = partial_ml.emplace(be, ml_bytes).as<float>();
  }
  // Recording: the combine runs in decode_split, with counters that the step owns (zeroed once; the last
  // block of each group sets its counter back to zero).
  if (recording(be))
    a.done = static_cast<unsigned*>(
        step_scratch(be, static_cast<size_t>(chunk * c.kv_heads * a.head_blocks) * sizeof(unsigned)));
  const size_t smem = static_cast<size_t>(a.q_floats + kDecodeHeads * kDecodeChunk) * sizeof(float);
  for (int64_t t0 = 0; t0 < tokens; t0 += chunk) {
    const int64_t n = std::min(chunk, tokens - t0);
    DecodeArgs at = a;
    at.q = a.q + t0 * heads * c.dk;
    at.slot = a.slot + t0;
    at.kv_len = a.kv_len + t0;
    at.out = data_of<float>(out) + t0 * heads * c.dv;
    at.token_base = static_cast<int>(t0);
    const dim3 grid(static_cast<unsigned>(n * c.kv_heads * a.head_blocks), static_cast<unsigned>(a.splits));
    if (c.dk <= kMaxHeadDim)
      launch_pdl(be, "decode_split", decode_split<kMaxHeadDim / 32>, grid, kDecodeThreads, smem, at);
    else
      launch_pdl(be, "decode_split", decode_split<kMaxDecodeHeadDim / 32>, grid, kDecodeThreads, smem, at);
    if (!a.done)
      launch_pdl(be, "decode_combine", decode_combine, static_cast<unsigned>(n * heads), kDecodeThreads, 0, at);
  }
}

}  // namespace moe_cuda
