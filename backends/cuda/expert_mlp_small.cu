#include <cstdint>
#include <optional>
#include <string>

#include "device_buffer.h"
#include "device_index_checks.cuh"
#include "device_math.cuh"
#include "expert_mlp_small.h"
#include "fused_decode.h"
#include "pdl_launch.cuh"
#include "recording.h"
#include "row_dots.cuh"

namespace moe_cuda {
namespace {

constexpr int kMlpThreads = 256;
constexpr int kMlpWarps = kMlpThreads / 32;  // one output column per warp
constexpr size_t kMaxStepHiddenBytes = size_t{4} << 20;

// The slot-th expert (in id order) whose clamped row range [begin, end) is not empty, or -1. Every lane
// of the warp gets the answer.
__device__ int expert_of_slot(const int64_t* offsets, int experts, int64_t rows, int slot, int64_t& begin,
                              int64_t& end) {
  const int lane = threadIdx.x % 32;
  int seen = 0;
  for (int e0 = 0; e0 < experts; e0 += 32) {
    const int e = e0 + lane;
    int64_t b = 0, en = 0;
    if (e < experts) {
      b = min(max(offsets[e], int64_t{0}), rows);
      en = min(max(offsets[e + 1], b), rows);
    }
    const unsigned mask = __ballot_sync(0xffffffffu, en > b);
    const int count = __popc(mask);
    if (slot < seen + count) {
      unsigned m = mask;
      for (int i = 0; i < slot - seen; ++i) m &= m - 1;  // drop the lower set bits
      const int src = __ffs(m) - 1;
      begin = __shfl_sync(0xffffffffu, b, src);
      end = __shfl_sync(0xffffffffu, en, src);
      return e0 + src;
    }
    seen += count;
  }
  return -1;
}

// 0 <= offsets[0] <= ... <= offsets[experts] <= rows, checked by one thread; the first break is reported.
__device__ void check_offsets(const int64_t* offsets, int experts, int64_t rows, IndexError* errors) {
  int64_t previous = 0;
  for (int e = 0; e <= experts; ++e) {
    const int64_t v = offsets[e];
    if (!index_ok(errors, IndexCheck::kExpertMlpOffsets, e, -1, v, previous, rows)) return;
    previous = v;
  }
}

// hidden [rows, F] (f32) of the experts' rows; grid (expert slots, ceil(F / kMlpWarps)). Paired: the gate and
// up rows' loads issued together (dot_rows_pair, the same bits), with the fused decode kernels (fused_decode.h).
template <typename W, bool Vec, bool Paired>
__global__ void __launch_bounds__(kMlpThreads)
    expert_gate_up(const float* x, const int64_t* offsets, const W* gate_up, int experts, int64_t rows, int64_t dim,
                   int64_t width, int32_t act, float* hidden) {
  pdl_wait_and_release();
  const int64_t j = blockIdx.y * int64_t{kMlpWarps} + threadIdx.x / 32;
  if (j >= width) return;  // the whole warp
  int64_t begin, end;
  const int e = expert_of_slot(offsets, experts, rows, blockIdx.x, begin, end);
  if (e < 0) return;
  const W* wg = gate_up + (int64_t{e} * 2 * width + j) * dim;
  const W* wu = wg + width * dim;
  for (int64_t r0 = begin; r0 < end; r0 += kPassRows) {
    const int nr = static_cast<int>(min(int64_t{kPassRows}, end - r0));
    float g[kPassRows] = {}, u[kPassRows] = {};
    if constexpr (Paired) {
      dot_rows_pair<W, Vec>(wg, wu, x + r0 * dim, dim, dim, nr, g, u);
    } else {
      dot_rows<W, Vec>(wg, x + r0 * dim, dim, dim, nr, g);
      dot_rows<W, Vec>(wu, x + r0 * dim, dim, dim, nr, u);
    }
#pragma unroll
    for (int r = 0; r < kPassRows; ++r) {
      const float gs = warp_sum(g[r]), us = warp_sum(u[r]);
      if (r < nr && threadIdx.x % 32 == 0) hidden[(r0 + r) * width + j] = activation(gs, act) * us;
    }
  }
}

// y [rows, dim] of the experts' rows from hidden; grid (expert slots, ceil(dim / kMlpWarps)).
template <typename W, bool Vec>
__global__ void __launch_bounds__(kMlpThreads)
    expert_down(const float* hidden, const int64_t* offsets, const W* down, int experts, int64_t rows, int64_t dim,
                int64_t width, float* y, IndexError* errors) {
  pdl_wait_and_release();
  if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) check_offsets(offsets, experts, rows, errors);
  const int64_t c = blockIdx.y * int64_t{kMlpWarps} + threadIdx.x / 32;
  if (c >= dim) return;
  int64_t begin, end;
  const int e = expert_of_slot(offsets, experts, rows, blockIdx.x, begin, end);
  if (e < 0) return;
  const W* wd = down + (int64_t{e} * dim + c) * width;
  for (int64_t r0 = begin; r0 < end; r0 += kPassRows) {
    const int nr = static_cast<int>(min(int64_t{kPassRows}, end - r0));
    float acc[kPassRows] = {};
    dot_rows<W, Vec>(wd, hidden + r0 * width, width, width, nr, acc);
#pragma unroll
    for (int r = 0; r < kPassRows; ++r) {
      const float s = warp_sum(acc[r]);
      if (r < nr && threadIdx.x % 32 == 0) y[(r0 + r) * dim + c] = s;
    }
  }
}

// expert_down for the rows of one token, followed by moe_unpermute's combination (unpermute_rows in
// moe_permute_device.cu) of that token's outputs into out [1, dim]: a warp per output column c computes y[r, c]
// for each of the token's rows r as expert_down does (the same dot_rows and warp_sum, which give a row's sum
// the same bits whatever the rows beside it), writes it to y, and adds weights[j] * y[row of j, c] to out in
// unpermute_rows' order, so y and out are the two kernels' bit for bit. The block first maps each flat index
// to its row (source's inverse, checked as unpermute_rows checks it) and each row to its expert (the clamped
// offsets, as expert_of_slot reads them; block 0 checks the offsets as expert_down does). Grid: ceil(dim /
// kMlpWarps); shared memory: 2 * rows ints.
template <typename W, bool Vec>
__global__ void __launch_bounds__(kMlpThreads)
    expert_down_combine(const float* hidden, const int64_t* offsets, const W* down, int experts, int rows, int64_t dim,
                        int64_t width, const int32_t* source, const float* weights, bool accumulate, float* y,
                        float* out, IndexError* errors) {
  extern __shared__ int maps[];
  int* row_of = maps;            // [rows]: the sorted row of flat index f, or -1
  int* expert_of = maps + rows;  // [rows]: the expert whose rows hold sorted row r, or -1
  pdl_wait_and_release();
  if (blockIdx.x == 0 && threadIdx.x == 0) check_offsets(offsets, experts, rows, errors);
  for (int f = threadIdx.x; f < rows; f += blockDim.x) row_of[f] = -1;
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    int found = -1;
    for (int e = 0; e < experts && found < 0; ++e) {
      const int64_t b = min(max(offsets[e], int64_t{0}), int64_t{rows});
      const int64_t en = min(max(offsets[e + 1], b), int64_t{rows});
      if (r >= b && r < en) found = e;
    }
    expert_of[r] = found;
  }
  __syncthreads();
  IndexError* e = blockIdx.x == 0 ? errors : nullptr;  // one block reports
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const int f = source[r];
    if (!index_ok(e, IndexCheck::kUnpermuteSource, r, -1, f, 0, rows - 1)) continue;
    if (atomicCAS(&row_of[f], -1, r) != -1 && e)
      report_bad_index(e, IndexCheck::kUnpermuteSourceTwice, r, -1, f, 0, rows - 1);
  }
  __syncthreads();
  const int64_t c = blockIdx.x * int64_t{kMlpWarps} + threadIdx.x / 32;
  if (c >= dim) return;  // the whole warp
  float sum = accumulate ? out[c] : 0.f;
  for (int j = 0; j < rows; ++j) {
    const int r = row_of[j];
    if (r < 0) continue;
    const int ex = expert_of[r];
    if (ex < 0) continue;  // bad offsets (reported): y[r] is left as it was, as expert_down leaves it
    float acc[kPassRows] = {};
    dot_rows<W, Vec>(down + (int64_t{ex} * dim + c) * width, hidden + int64_t{r} * width, width, width, 1, acc);
    const float yv = warp_sum(acc[0]);
    if (threadIdx.x % 32 == 0) y[int64_t{r} * dim + c] = yv;
    sum += weights[j] * yv;
  }
  if (threadIdx.x % 32 == 0) out[c] = sum;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename W, bool Vec>
void launch(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets, const W* gate_up,
            const W* down, int32_t activation, float* hidden, float* y, unsigned slots, const TokenCombine* combine) {
  const int experts = static_cast<int>(s.experts);
  const dim3 up_grid(slots, static_cast<unsigned>((s.width + kMlpWarps - 1) / kMlpWarps));
  if (s.width > 0) {
    if (fused_decode_switched_on("expert_gate_up"))
      launch_pdl(be, "expert_gate_up", expert_gate_up<W, Vec, true>, up_grid, kMlpThreads, 0, x, offsets, gate_up,
                 experts, s.rows, s.dim, s.width, activation, hidden);
    else
      launch_pdl(be, "expert_gate_up", expert_gate_up<W, Vec, false>, up_grid, kMlpThreads, 0, x, offsets, gate_up,
                 experts, s.rows, s.dim, s.width, activation, hidden);
  }
  if (combine) {
    const unsigned blocks = static_cast<unsigned>((s.dim + kMlpWarps - 1) / kMlpWarps);
    launch_pdl(be, "expert_down_combine", expert_down_combine<W, Vec>, blocks, kMlpThreads,
               2 * static_cast<size_t>(s.rows) * sizeof(int), hidden, offsets, down, experts, static_cast<int>(s.rows),
               s.dim, s.width, combine->source, combine->weights, combine->accumulate, y, combine->out,
               device_index_errors(be));
    return;
  }
  const dim3 down_grid(slots, static_cast<unsigned>((s.dim + kMlpWarps - 1) / kMlpWarps));
  launch_pdl(be, "expert_down", expert_down<W, Vec>, down_grid, kMlpThreads, 0, hidden, offsets, down, experts, s.rows,
             s.dim, s.width, y, device_index_errors(be));
}

void run_on_device(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets, const void* gate_up,
                   const void* down, int32_t activation, float* y, const TokenCombine* combine) {
  if (s.rows == 0 || s.dim == 0 || s.experts == 0) return;
  if (s.experts > INT32_MAX || s.width > INT32_MAX || s.dim / kMlpWarps > 65535 || s.width / kMlpWarps > 65535)
    fail(MOE_ERR_UNSUPPORTED, "recording expert_mlp with dim " + std::to_string(s.dim) + " and expert width " +
                                  std::to_string(s.width) + " is beyond its launch limits");
  const unsigned slots = static_cast<unsigned>(s.experts < s.rows ? s.experts : s.rows);
  // hidden is only read where expert_gate_up wrote it (the same clamped rows), except when F = 0. While
  // recording, a small one is memory the step owns: no allocation nodes in the graph between the kernels.
  const size_t hidden_bytes = static_cast<size_t>(s.rows * s.width) * sizeof(float);
  std::optional<DeviceBuffer> hidden_buffer;
  float* hidden = recording(be) && hidden_bytes <= kMaxStepHiddenBytes
                      ? static_cast<float*>(step_scratch(be, hidden_bytes))
                      : hidden_buffer.emplace(be, hidden_bytes).as<float>();
  const bool vec = s.dim % 8 == 0 && s.width % 8 == 0 && aligned16(x) && aligned16(gate_up) && aligned16(down) &&
                   aligned16(hidden);
  if (s.wtype == MOE_DTYPE_BF16) {
    auto* gu = static_cast<const __nv_bfloat16*>(gate_up);
    auto* dn = static_cast<const __nv_bfloat16*>(down);
    if (vec)
      launch<__nv_bfloat16, true>(be, s, x, offsets, gu, dn, activation, hidden, y, slots, combine);
    else
      launch<__nv_bfloat16, false>(be, s, x, offsets, gu, dn, activation, hidden, y, slots, combine);
  } else {
    auto* gu = static_cast<const float*>(gate_up);
    auto* dn = static_cast<const float*>(down);
    if (vec)
      launch<float, true>(be, s, x, offsets, gu, dn, activation, hidden, y, slots, combine);
    else
      launch<float, false>(be, s, x, offsets, gu, dn, activation, hidden, y, slots, combine);
  }
}

}  // namespace

void expert_mlp_on_device(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets,
                          const void* gate_up, const void* down, int32_t activation, float* y) {
  run_on_device(be, s, x, offsets, gate_up, down, activation, y, nullptr);
}

bool expert_mlp_combine_on_device(moe_backend& be, const ExpertShapes& s, const float* x, const int64_t* offsets,
                                  const void* gate_up, const void* down, int32_t activation, float* y,
                                  const TokenCombine& combine) {
  // One token's rows (at most what the kernel's shared maps hold), every dimension present.
  if (s.rows < 1 || s.rows > kMaxCombineRows || s.dim == 0 || s.width == 0 || s.experts == 0) return false;
  run_on_device(be, s, x, offsets, gate_up, down, activation, y, &combine);
  return true;
}

}  // namespace moe_cuda
