// Micro-benchmark of the CPU backend's ops on the shapes of the benchmark model (Mixtral-style:
// d_model 512, 8 heads of 64, 16 experts top-2 of width 1024, vocabulary 32000; prefill 8 x 256
// tokens, decode 1 token), each next to a measured ceiling and, where one exists, a peer:
//   ceilings  memory copy bandwidth (large buffers, all threads) and FMA / bf16-dot peaks
//   decode    GEMV (M=1) through the backend and through a oneDNN matmul, cold (weights rotated over
//             more memory than the caches hold, as in decode) and hot; M=1..8 crossover
//   prefill   GEMMs of the model (M = 2048)
//   experts   per-expert matmuls with ~256 rows that vary per call: runtime-M primitives vs one
//             primitive per distinct M vs M rounded up to a bucket; then the expert_mlp op itself
//   attention causal prefill 8 x 256 and decode against 400 cached keys
//   others    rmsnorm, rope, gated_act, embedding, routers, permute/unpermute, kv_store, copy, add
// Times are medians of repeated calls after a warm-up.
//
// Usage: moe_bench_cpu_ops [--threads N] [--quick] [--only SECTION] [--cpu-time]
//   SECTION: gemv, small_m, prefill, strategies, expert_mlp, attention, memory (default: all).
//   --cpu-time: time by the process's CPU time instead of the wall clock. With --threads 1 on a
//   machine loaded by other work this measures the kernels rather than the scheduler.
//   Plugins come from $MOE_PLUGIN_DIR, else from this build tree.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "moe/moe.h"
#include "plugins/registry.h"
#include "row_buckets.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace {

using moe::Backend;
using moe::Tensor;
using Clock = std::chrono::steady_clock;

// Model and batch of the benchmark.
constexpr int64_t kDim = 512, kHeads = 8, kHeadDim = 64, kExperts = 16, kTopK = 2, kExpertWidth = 1024;
constexpr int64_t kVocab = 32000, kPrefillSeqs = 8, kPrefillLen = 256, kDecodeContext = 400;
constexpr int64_t kPrefillTokens = kPrefillSeqs * kPrefillLen;

bool g_quick = false;
bool g_cpu_time = false;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The clock benchmarks are timed by: the wall clock, or with --cpu-time the process's CPU time.
double timer_seconds() {
  timespec ts;
  clock_gettime(g_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Median time of `f` after warm-up, over enough calls to fill ~0.3 s (0.05 s with --quick).
double median_seconds(const std::function<void()>& f, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> times;
  const double budget = g_quick ? 0.05 : 0.3;
  auto start = Clock::now();
  while (times.size() < 5 || (seconds_since(start) < budget && times.size() < 2000)) {
    const double t0 = timer_seconds();
    f();
    times.push_back(timer_seconds() - t0);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor upload(Backend& be, const std::vector<float>& v, moe_dtype dtype, moe::Shape shape) {
  if (dtype == MOE_DTYPE_F32)
    return Tensor::from_host(be, dtype, std::move(shape), v.data(), moe::Lifetime::kPersistent);
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = moe::f32_to_bf16(v[i]);
  return Tensor::from_host(be, dtype, std::move(shape), bits.data(), moe::Lifetime::kPersistent);
}

Tensor upload_i32(Backend& be, const std::vector<int32_t>& v, moe::Shape shape) {
  return Tensor::from_host(be, MOE_DTYPE_I32, std::move(shape), v.data(), moe::Lifetime::kPersistent);
}

const char* dtype_name(moe_dtype t) { return t == MOE_DTYPE_BF16 ? "bf16" : "f32"; }

void check(Backend& be, moe_status s, const char* op) { be.check(s, op); }

// ------------------------------------------------------------------------------------------------
// Ceilings

struct Ceilings {
  double copy_gbs = 0;     // bytes read + written per second, large buffers, all threads
  double f32_gflops = 0;   // AVX-512 FMA peak, all threads
  double bf16_gflops = 0;  // vdpbf16ps peak, all threads (0 without avx512_bf16)
};

double copy_bandwidth(int threads) {
  const size_t bytes = size_t{512} << 20;
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double best = 0;
  for (int rep = 0; rep < (g_quick ? 2 : 5); ++rep) {
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      size_t chunk = bytes / omp_get_num_threads();
      size_t begin = chunk * omp_get_thread_num();
      std::memcpy(dst.data() + begin, src.data() + begin, chunk);
    }
    best = std::max(best, 2.0 * bytes / seconds_since(t0) / 1e9);
  }
  return best;
}

// Independent FMA chains per thread (enough to cover the latency); flops = 2 per lane per FMA.
__attribute__((target("avx512f"))) double fma_peak(int threads) {
  constexpr int kIters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      __m512 a[12];
      for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.f + i * 1e-3f);
      const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
      for (int it = 0; it < kIters; ++it)
        for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
      alignas(64) float lanes[16];
      for (int i = 1; i < 12; ++i) a[0] = _mm512_add_ps(a[0], a[i]);
      _mm512_store_ps(lanes, a[0]);
      if (lanes[0] == 42.f) std::printf(" ");  // keeps the loop
    }
    double s = seconds_since(t0);
    best = std::max(best, 2.0 * 16 * 12 * double(kIters) * threads / s / 1e9);
  }
  return best;
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_dot_peak(int threads) {
  constexpr int kIters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      __m512 a[12];
      for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(0.f);
      const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3400);
      for (int it = 0; it < kIters; ++it)
        for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbf16_ps(a[i], b, c);
      alignas(64) float lanes[16];
      for (int i = 1; i < 12; ++i) a[0] = _mm512_add_ps(a[0], a[i]);
      _mm512_store_ps(lanes, a[0]);
      if (lanes[0] == 42.f) std::printf(" ");  // keeps the loop
    }
    double s = seconds_since(t0);
    best = std::max(best, 2.0 * 32 * 12 * double(kIters) * threads / s / 1e9);  // 32 products per instruction
  }
  return best;
}

Ceilings measure_ceilings(int threads) {
  Ceilings c;
  c.copy_gbs = copy_bandwidth(threads);
  if (__builtin_cpu_supports("avx512f")) c.f32_gflops = fma_peak(threads);
  if (__builtin_cpu_supports("avx512bf16")) c.bf16_gflops = bf16_dot_peak(threads);
  return c;
}

// ------------------------------------------------------------------------------------------------
// oneDNN peers

struct OnednnMatmul {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, c;
  std::vector<char> scratchpad;

  // m = DNNL_RUNTIME_DIM_VAL makes M a run-time dimension.
  OnednnMatmul(int64_t m, int64_t n, int64_t k, dnnl::memory::data_type type) {
    using dt = dnnl::memory::data_type;
    a = dnnl::memory::desc({m, k}, type, {k, 1});
    b = dnnl::memory::desc({k, n}, type, {1, k});  // nn.Linear weights [n, k], read transposed
    c = dnnl::memory::desc({m, n}, dt::f32, {n, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine);
    primitive = dnnl::matmul(pd);
    scratchpad.resize(pd.scratchpad_desc().get_size() + 64);
  }

  void run(int64_t m, const void* pa, const void* pb, float* pc) {
    using dt = dnnl::memory::data_type;
    dnnl::stream stream(engine);
    const int64_t k = b.dims()[0], n = b.dims()[1];
    dnnl::memory::desc am({m, k}, a.data_type(), {k, 1}), cm({m, n}, dt::f32, {n, 1});
    primitive.execute(
        stream, {{DNNL_ARG_SRC, dnnl::memory(am, engine, const_cast<void*>(pa))},
                 {DNNL_ARG_WEIGHTS, dnnl::memory(b, engine, const_cast<void*>(pb))},
                 {DNNL_ARG_DST, dnnl::memory(cm, engine, pc)},
                 {DNNL_ARG_SCRATCHPAD,
                  dnnl::memory({{static_cast<int64_t>(scratchpad.size())}, dt::u8, {1}}, engine, scratchpad.data())}});
    stream.wait();
  }
};

dnnl::memory::data_type onednn_type(moe_dtype t) {
  return t == MOE_DTYPE_BF16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// ------------------------------------------------------------------------------------------------
// Decode GEMV

void gemm_call(Backend& be, int64_t m, int64_t n, int64_t k, const void* a, moe_dtype at, const void* b, moe_dtype bt,
               float* c) {
  check(be, be.ops().gemm(be.handle(), 0, 1, m, n, k, 1.f, a, at, k, b, bt, k, 0.f, c, MOE_DTYPE_F32, n), "gemm");
}

void bench_gemv(Backend& be, Backend* avx2, const Ceilings& ceil) {
  std::printf("\n== decode GEMV: y[1, n] = x[1, k] . W[n, k]^T, W cold (rotated over 512 MiB) and hot ==\n");
  std::printf("%-22s %-5s | %9s %7s %5s | %9s %7s | %9s %7s | %8s %7s\n", "W [n x k]", "type", "ours us", "GB/s",
              "%copy", "avx2 us", "GB/s", "oneDNN us", "GB/s", "hot us", "GB/s");
  struct Shape {
    int64_t n, k;
  };
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (Shape s : {Shape{kVocab, kDim}, Shape{kDim, kDim}, Shape{2 * kExpertWidth, kDim}, Shape{kDim, kExpertWidth}}) {
      const size_t welem = wt == MOE_DTYPE_BF16 ? 2 : 4;
      const size_t wbytes = s.n * s.k * welem;
      const size_t copies = std::max<size_t>(2, (size_t{512} << 20) / wbytes);
      std::vector<Tensor> weights;
      auto w = random_floats(s.n * s.k, 1, 0.05f);
      for (size_t i = 0; i < copies; ++i) weights.push_back(upload(be, w, wt, {s.n, s.k}));
      Tensor x = upload(be, random_floats(s.k, 2), MOE_DTYPE_F32, {1, s.k});
      Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {1, s.n});
      size_t next = 0;
      auto cold = [&](Backend& b) {
        return median_seconds([&] {
          gemm_call(b, 1, s.n, s.k, x.data(), MOE_DTYPE_F32, weights[next++ % copies].data(), wt,
                    static_cast<float*>(y.data()));
        });
      };
      const double ours = cold(be);
      const double ours_avx2 = avx2 ? cold(*avx2) : 0;
      // The peer multiplies like types: give it a bf16 x when the weights are bf16.
      OnednnMatmul peer(1, s.n, s.k, onednn_type(wt));
      Tensor xp = upload(be, random_floats(s.k, 2), wt, {1, s.k});
      const double onednn = median_seconds([&] {
        peer.run(1, xp.data(), weights[next++ % copies].data(), static_cast<float*>(y.data()));
      });
      const double hot = median_seconds([&] {
        gemm_call(be, 1, s.n, s.k, x.data(), MOE_DTYPE_F32, weights[0].data(), wt, static_cast<float*>(y.data()));
      });
      const double bytes = wbytes + s.k * 4.0 + s.n * 4.0;
      char name[32];
      std::snprintf(name, sizeof name, "[%ld x %ld]", static_cast<long>(s.n), static_cast<long>(s.k));
      std::printf("%-22s %-5s | %9.1f %7.1f %4.0f%% | %9.1f %7.1f | %9.1f %7.1f | %8.1f %7.1f\n", name, dtype_name(wt),
                  ours * 1e6, bytes / ours / 1e9, 100 * bytes / ours / 1e9 / ceil.copy_gbs, ours_avx2 * 1e6,
                  avx2 ? bytes / ours_avx2 / 1e9 : 0.0, onednn * 1e6, bytes / onednn / 1e9, hot * 1e6,
                  bytes / hot / 1e9);
    }
  }
}

// Small M: where the GEMV kernels stop beating oneDNN (both through the backend's gemm and direct).
void bench_small_m(Backend& be) {
  std::printf("\n== small M, W [2048 x 512] hot: GEMV kernels vs oneDNN matmul (us) ==\n");
  std::printf("%-5s %-4s | %9s | %11s\n", "type", "M", "ours", "oneDNN");
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    const int64_t n = 2 * kExpertWidth, k = kDim;
    Tensor w = upload(be, random_floats(n * k, 3, 0.05f), wt, {n, k});
    Tensor x = upload(be, random_floats(16 * k, 4), MOE_DTYPE_F32, {16, k});
    Tensor xp = upload(be, random_floats(16 * k, 4), wt, {16, k});
    Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {16, n});
    for (int64_t m = 1; m <= 16; ++m) {
      const double ours = median_seconds(
          [&] { gemm_call(be, m, n, k, x.data(), MOE_DTYPE_F32, w.data(), wt, static_cast<float*>(y.data())); });
      OnednnMatmul peer(m, n, k, onednn_type(wt));
      const double onednn =
          median_seconds([&] { peer.run(m, xp.data(), w.data(), static_cast<float*>(y.data())); });
      std::printf("%-5s %-4ld | %9.1f | %11.1f\n", dtype_name(wt), static_cast<long>(m), ours * 1e6, onednn * 1e6);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Prefill GEMMs

void bench_prefill_gemm(Backend& be, const Ceilings& ceil) {
  std::printf("\n== prefill GEMM: y[2048, n] = x[2048, k] . W[n, k]^T ==\n");
  std::printf("%-24s %-5s | %10s %9s %6s\n", "W [n x k]", "type", "ms", "GFLOP/s", "%peak");
  struct Shape {
    const char* what;
    int64_t n, k;
  };
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (Shape s : {Shape{"qkv [1536 x 512]", 3 * kDim, kDim}, Shape{"o [512 x 512]", kDim, kDim},
                    Shape{"lm head [32000 x 512]", kVocab, kDim}}) {
      const int64_t m = kPrefillTokens;
      Tensor w = upload(be, random_floats(s.n * s.k, 5, 0.05f), wt, {s.n, s.k});
      Tensor x = upload(be, random_floats(m * s.k, 6), MOE_DTYPE_F32, {m, s.k});
      Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {m, s.n});
      const double t = median_seconds(
          [&] { gemm_call(be, m, s.n, s.k, x.data(), MOE_DTYPE_F32, w.data(), wt, static_cast<float*>(y.data())); }, 1);
      const double gflops = 2.0 * m * s.n * s.k / t / 1e9;
      const double peak = wt == MOE_DTYPE_BF16 ? ceil.bf16_gflops : ceil.f32_gflops;
      std::printf("%-24s %-5s | %10.2f %9.1f %5.0f%%\n", s.what, dtype_name(wt), t * 1e3, gflops,
                  peak > 0 ? 100 * gflops / peak : 0.0);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Experts

// Rows per expert of a prefill batch: kPrefillTokens * kTopK rows over kExperts experts, uneven
// like a router's (each draw gives different counts).
std::vector<int64_t> expert_rows(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> share(kExperts);
  std::gamma_distribution<double> g(30.0, 1.0);
  double total = 0;
  for (auto& s : share) total += s = g(rng);
  std::vector<int64_t> rows(kExperts);
  int64_t assigned = 0;
  for (int64_t e = 0; e < kExperts; ++e)
    assigned += rows[e] = static_cast<int64_t>(share[e] / total * kPrefillTokens * kTopK);
  rows[0] += kPrefillTokens * kTopK - assigned;
  return rows;
}

// oneDNN alone on the expert matmuls (gate_up [2048 x 512] then down [512 x 1024] per expert), over
// several prefill batches whose per-expert M all differ: which way to handle a varying M.
void bench_expert_strategies(const Ceilings& ceil) {
  std::printf("\n== expert matmul strategies (oneDNN direct): 16 experts x ~256 rows, M different per call ==\n");
  std::printf("%-5s %-40s | %9s %9s %9s %6s | %s\n", "type", "strategy", "1st ms", "ms/layer", "GFLOP/s", "%peak",
              "primitives");
  const int batches = g_quick ? 3 : 8;
  std::vector<std::vector<int64_t>> rows;
  for (int b = 0; b < batches; ++b) rows.push_back(expert_rows(100 + b));
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    const auto type = onednn_type(wt);
    const size_t elem = wt == MOE_DTYPE_BF16 ? 2 : 4;
    const int64_t max_m = 1024;
    std::vector<char> a(max_m * kExpertWidth * elem, 0), w1(2 * kExpertWidth * kDim * elem, 0),
        w2(kDim * kExpertWidth * elem, 0);
    std::vector<float> c(max_m * 2 * kExpertWidth);
    auto fill = [](std::vector<char>& v, bool bf16) {
      auto r = random_floats(v.size() / (bf16 ? 2 : 4), 7, 0.1f);
      for (size_t i = 0; i < r.size(); ++i) {
        if (bf16) {
          uint16_t h = moe::f32_to_bf16(r[i]);
          std::memcpy(&v[2 * i], &h, 2);
        } else {
          std::memcpy(&v[4 * i], &r[i], 4);
        }
      }
    };
    fill(a, wt == MOE_DTYPE_BF16);
    fill(w1, wt == MOE_DTYPE_BF16);
    fill(w2, wt == MOE_DTYPE_BF16);
    double flops = 0;
    for (auto& r : rows)
      for (int64_t m : r) flops += 2.0 * m * (2 * kExpertWidth * kDim + kDim * kExpertWidth);
    flops /= batches;
    // One layer = 16 experts x (gate_up, down) for one batch's M values; per layer, averaged over
    // the batches. The first pass includes whatever primitives a strategy creates on the way; the
    // steady state is the best of several later passes (robust to other load on the machine).
    auto layers = [&](const std::function<void(int64_t)>& expert) {
      const double t0 = timer_seconds();
      for (auto& r : rows)
        for (int64_t m : r) expert(m);
      return (timer_seconds() - t0) / batches;
    };
    using Pair = std::pair<std::unique_ptr<OnednnMatmul>, std::unique_ptr<OnednnMatmul>>;
    auto run_pair = [&](Pair& p, int64_t m, int64_t rows_for_primitive) {
      if (!p.first) {
        p.first = std::make_unique<OnednnMatmul>(rows_for_primitive, 2 * kExpertWidth, kDim, type);
        p.second = std::make_unique<OnednnMatmul>(rows_for_primitive, kDim, kExpertWidth, type);
      }
      p.first->run(m, a.data(), w1.data(), c.data());
      p.second->run(m, a.data(), w2.data(), c.data());
    };
    struct Strategy {
      const char* what;
      std::function<void(int64_t)> expert;
      std::function<size_t()> primitives;
    };
    Pair runtime;
    std::map<int64_t, Pair> exact, geometric, blocks, by16, by32, by64;
    auto rounded = [&run_pair](std::map<int64_t, Pair>& cache, int64_t g) {
      return [&cache, &run_pair, g](int64_t m) {
        const int64_t mb = (m + g - 1) / g * g;
        run_pair(cache[mb], mb, mb);
      };
    };
    std::vector<Strategy> strategies = {
        {"runtime M (one primitive per shape)", [&](int64_t m) { run_pair(runtime, m, DNNL_RUNTIME_DIM_VAL); },
         [] { return size_t{2}; }},
        {"exact M (a primitive per distinct M)", [&](int64_t m) { run_pair(exact[m], m, m); },
         [&] { return 2 * exact.size(); }},
        {"M rounded up, row_buckets.h (backend)",
         [&](int64_t m) {
           const int64_t mb = moe_cpu::round_rows_up(m);
           run_pair(geometric[mb], mb, mb);
         },
         [&] { return 2 * geometric.size(); }},
        {"M split: bucket blocks + remainder",
         [&](int64_t m) {
           for (int64_t done = 0; done < m;) {
             const int64_t block = moe_cpu::round_rows_down(m - done);
             run_pair(blocks[block], block, block);
             done += block;
           }
         },
         [&] { return 2 * blocks.size(); }},
        {"M rounded up to 16", rounded(by16, 16), [&] { return 2 * by16.size(); }},
        {"M rounded up to 32", rounded(by32, 32), [&] { return 2 * by32.size(); }},
        {"M rounded up to 64", rounded(by64, 64), [&] { return 2 * by64.size(); }},
    };
    std::vector<double> first(strategies.size()), best(strategies.size(), 1e30);
    for (size_t i = 0; i < strategies.size(); ++i) first[i] = layers(strategies[i].expert);
    for (int pass = 0; pass < (g_quick ? 2 : 5); ++pass)
      for (size_t i = 0; i < strategies.size(); ++i) best[i] = std::min(best[i], layers(strategies[i].expert));
    const double peak = wt == MOE_DTYPE_BF16 ? ceil.bf16_gflops : ceil.f32_gflops;
    for (size_t i = 0; i < strategies.size(); ++i)
      std::printf("%-5s %-40s | %9.2f %9.2f %9.1f %5.0f%% | %zu\n", dtype_name(wt), strategies[i].what, first[i] * 1e3,
                  best[i] * 1e3, flops / best[i] / 1e9, peak > 0 ? 100 * flops / best[i] / 1e9 / peak : 0.0,
                  strategies[i].primitives());
  }
}

void bench_expert_mlp(Backend& be, const Ceilings& ceil) {
  std::printf("\n== expert_mlp op: 16 experts, dim 512, width 1024 ==\n");
  std::printf("%-38s %-5s | %10s %11s\n", "case", "type", "ms", "rate");
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    Tensor gate_up = upload(be, random_floats(kExperts * 2 * kExpertWidth * kDim, 8, 0.05f), wt,
                            {kExperts, 2 * kExpertWidth, kDim});
    Tensor down =
        upload(be, random_floats(kExperts * kDim * kExpertWidth, 9, 0.05f), wt, {kExperts, kDim, kExpertWidth});
    const double elem = wt == MOE_DTYPE_BF16 ? 2 : 4;
    {  // prefill: a different split of 4096 rows per call
      const int64_t rows = kPrefillTokens * kTopK;
      Tensor x = upload(be, random_floats(rows * kDim, 10), MOE_DTYPE_F32, {rows, kDim});
      Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {rows, kDim});
      std::vector<Tensor> offsets;
      for (int b = 0; b < 8; ++b) {
        auto r = expert_rows(200 + b);
        std::vector<int64_t> off(kExperts + 1, 0);
        for (int64_t e = 0; e < kExperts; ++e) off[e + 1] = off[e] + r[e];
        offsets.push_back(Tensor::from_host(be, MOE_DTYPE_I64, {kExperts + 1}, off.data()));
      }
      size_t next = 0;
      const double t = median_seconds([&] {
        moe_tensor xr = x.ref(), orf = offsets[next++ % offsets.size()].ref(), gr = gate_up.ref(), dr = down.ref(),
                   yr = y.ref();
        check(be, be.ops().expert_mlp(be.handle(), &xr, &orf, &gr, &dr, MOE_ACT_SILU, &yr), "expert_mlp");
      }, 8);
      const double gflops = 2.0 * rows * 3 * kExpertWidth * kDim / t / 1e9;
      const double peak = wt == MOE_DTYPE_BF16 ? ceil.bf16_gflops : ceil.f32_gflops;
      std::printf("%-38s %-5s | %10.2f %6.1f GFLOP/s (%.0f%% of peak)\n", "prefill 4096 rows, M varies per call",
                  dtype_name(wt), t * 1e3, gflops, peak > 0 ? 100 * gflops / peak : 0.0);
    }
    {  // decode: 1 token, 2 experts. Cold: calls cycle over 8 layers x 8 expert pairs (all the weights:
       // 800 MB in f32, 400 MB in bf16), so no call finds its experts in a cache.
      const int layers = 8;
      std::vector<Tensor> gu, dn;
      for (int l = 0; l < layers; ++l) {
        gu.push_back(upload(be, random_floats(kExperts * 2 * kExpertWidth * kDim, 20 + l, 0.05f), wt,
                            {kExperts, 2 * kExpertWidth, kDim}));
        dn.push_back(upload(be, random_floats(kExperts * kDim * kExpertWidth, 40 + l, 0.05f), wt,
                            {kExperts, kDim, kExpertWidth}));
      }
      Tensor x = upload(be, random_floats(2 * kDim, 11), MOE_DTYPE_F32, {2, kDim});
      Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {2, kDim});
      std::vector<Tensor> pairs;  // offsets giving one row each to experts 2p and 2p + 1
      for (int64_t p = 0; p < kExperts / 2; ++p) {
        std::vector<int64_t> off(kExperts + 1);
        for (int64_t e = 0; e <= kExperts; ++e) off[e] = e <= 2 * p ? 0 : (e == 2 * p + 1 ? 1 : 2);
        pairs.push_back(Tensor::from_host(be, MOE_DTYPE_I64, {kExperts + 1}, off.data()));
      }
      int64_t next = 0;
      const double t = median_seconds([&] {
        const int64_t l = next % layers, p = (next / layers) % static_cast<int64_t>(pairs.size());
        ++next;
        moe_tensor xr = x.ref(), orf = pairs[p].ref(), gr = gu[l].ref(), dr = dn[l].ref(), yr = y.ref();
        check(be, be.ops().expert_mlp(be.handle(), &xr, &orf, &gr, &dr, MOE_ACT_SILU, &yr), "expert_mlp");
      });
      const double bytes = 2 * 3 * kExpertWidth * kDim * elem;
      std::printf("%-38s %-5s | %10.3f %6.1f GB/s (%.0f%% of copy)\n", "decode 1 token x 2 experts, cold",
                  dtype_name(wt), t * 1e3, bytes / t / 1e9, 100 * bytes / t / 1e9 / ceil.copy_gbs);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Attention

void bench_attention(Backend& be, const Ceilings& ceil) {
  std::printf("\n== attention, head_dim 64 ==\n");
  std::printf("%-48s | %10s %11s\n", "case", "ms", "rate");
  struct Case {
    const char* what;
    int64_t heads, kv_heads, seqs, len, context;  // len query tokens per sequence; context = keys before them
  };
  for (Case c : {Case{"prefill 8 x 256 causal, 8 heads", 8, 8, kPrefillSeqs, kPrefillLen, 0},
                 Case{"prefill 8 x 256 causal, 8 heads / 2 kv heads", 8, 2, kPrefillSeqs, kPrefillLen, 0},
                 Case{"decode 1 token, 400 keys, 8 heads", 8, 8, 1, 1, kDecodeContext - 1},
                 Case{"decode 8 sequences, 400 keys, 8 heads", 8, 8, 8, 1, kDecodeContext - 1}}) {
    const int64_t tokens = c.seqs * c.len, capacity = c.context + c.len;
    Tensor q = upload(be, random_floats(tokens * c.heads * kHeadDim, 12), MOE_DTYPE_F32, {tokens, c.heads, kHeadDim});
    Tensor kc = upload(be, random_floats(c.seqs * c.kv_heads * capacity * kHeadDim, 13), MOE_DTYPE_F32,
                       {c.seqs, c.kv_heads, capacity, kHeadDim});
    Tensor vc = upload(be, random_floats(c.seqs * c.kv_heads * capacity * kHeadDim, 14), MOE_DTYPE_F32,
                       {c.seqs, c.kv_heads, capacity, kHeadDim});
    std::vector<int32_t> slot, len;
    for (int64_t s = 0; s < c.seqs; ++s)
      for (int64_t i = 0; i < c.len; ++i) {
        slot.push_back(static_cast<int32_t>(s));
        len.push_back(static_cast<int32_t>(c.context + i + 1));
      }
    Tensor ts = upload_i32(be, slot, {tokens}), tl = upload_i32(be, len, {tokens});
    Tensor out = Tensor::empty(be, MOE_DTYPE_F32, {tokens, c.heads, kHeadDim});
    const double t = median_seconds([&] {
      moe_tensor qr = q.ref(), kr = kc.ref(), vr = vc.ref(), sr = ts.ref(), lr = tl.ref(), orf = out.ref();
      check(be, be.ops().attention(be.handle(), &qr, &kr, &vr, &sr, &lr, 0.125f, &orf), "attention");
    });
    double pairs = 0;  // (query head, key) pairs
    for (int32_t l : len) pairs += static_cast<double>(l) * c.heads;
    const double flops = pairs * kHeadDim * 4;  // q.k and p.v, 2 flops per multiply-add
    if (c.len > 1) {
      std::printf("%-48s | %10.3f %6.1f GFLOP/s (%.0f%% of f32 peak)\n", c.what, t * 1e3, flops / t / 1e9,
                  ceil.f32_gflops > 0 ? 100 * flops / t / 1e9 / ceil.f32_gflops : 0.0);
    } else {
      const double bytes = static_cast<double>(c.seqs) * c.kv_heads * (c.context + 1) * kHeadDim * 4 * 2;
      std::printf("%-48s | %10.3f %6.1f GB/s of K,V (%.0f%% of copy)\n", c.what, t * 1e3, bytes / t / 1e9,
                  100 * bytes / t / 1e9 / ceil.copy_gbs);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Memory-bound ops

void bench_memory_ops(Backend& be, const Ceilings& ceil) {
  std::printf("\n== memory-bound ops (prefill shapes: 2048 tokens) ==\n");
  std::printf("%-46s | %10s %8s %7s\n", "op", "us", "GB/s", "%copy");
  const int64_t t = kPrefillTokens;
  auto row = [&](const char* what, double bytes, const std::function<void()>& f) {
    const double s = median_seconds(f);
    std::printf("%-46s | %10.1f %8.1f %6.0f%%\n", what, s * 1e6, bytes / s / 1e9,
                100 * bytes / s / 1e9 / ceil.copy_gbs);
  };
  Tensor x = upload(be, random_floats(t * kDim, 15), MOE_DTYPE_F32, {t, kDim});
  Tensor x2 = upload(be, random_floats(t * kDim, 16), MOE_DTYPE_F32, {t, kDim});
  Tensor y = Tensor::empty(be, MOE_DTYPE_F32, {t, kDim});
  Tensor w = upload(be, random_floats(kDim, 17), MOE_DTYPE_F32, {kDim});
  moe_tensor xr = x.ref(), x2r = x2.ref(), yr = y.ref(), wr = w.ref();
  row("rmsnorm [2048 x 512]", 2.0 * t * kDim * 4,
      [&] { check(be, be.ops().rmsnorm(be.handle(), &xr, &wr, 1e-5f, &yr), "rmsnorm"); });
  row("add [2048 x 512]", 3.0 * t * kDim * 4, [&] { check(be, be.ops().add(be.handle(), &xr, &x2r, &yr), "add"); });
  row("copy_2d [2048 x 256] of [2048 x 512]", 2.0 * t * 256 * 4, [&] {
    check(be,
          be.ops().copy_2d(be.handle(), static_cast<float*>(y.data()), kDim, static_cast<const float*>(x.data()), kDim,
                           t, 256),
          "copy_2d");
  });
  {
    Tensor qk = upload(be, random_floats(t * kHeads * kHeadDim, 18), MOE_DTYPE_F32, {t, kHeads, kHeadDim});
    std::vector<int32_t> pos(t);
    for (int64_t i = 0; i < t; ++i) pos[i] = static_cast<int32_t>(i % kPrefillLen);
    Tensor tp = upload_i32(be, pos, {t});
    Tensor cs = upload(be, random_floats(4096 * kHeadDim / 2, 19), MOE_DTYPE_F32, {4096, kHeadDim / 2});
    moe_tensor qr = qk.ref(), pr = tp.ref(), cr = cs.ref();
    row("rope neox [2048, 8, 64] in place", 2.0 * t * kHeads * kHeadDim * 4,
        [&] { check(be, be.ops().rope(be.handle(), &qr, &pr, &cr, &cr, 0, kHeadDim, MOE_ROPE_NEOX), "rope"); });
    row("rope interleaved [2048, 8, 64] in place", 2.0 * t * kHeads * kHeadDim * 4,
        [&] { check(be, be.ops().rope(be.handle(), &qr, &pr, &cr, &cr, 0, kHeadDim, MOE_ROPE_INTERLEAVED), "rope"); });
  }
  {
    const int64_t rows = t * kTopK;
    Tensor h = upload(be, random_floats(rows * 2 * kExpertWidth, 20, 3.f), MOE_DTYPE_F32, {rows, 2 * kExpertWidth});
    Tensor a = Tensor::empty(be, MOE_DTYPE_F32, {rows, kExpertWidth});
    moe_tensor hr = h.ref(), ar = a.ref();
    row("gated_act silu [4096 x 2048]", 3.0 * rows * kExpertWidth * 4,
        [&] { check(be, be.ops().gated_act(be.handle(), &hr, MOE_ACT_SILU, &ar), "gated_act"); });
    row("gated_act gelu-tanh [4096 x 2048]", 3.0 * rows * kExpertWidth * 4,
        [&] { check(be, be.ops().gated_act(be.handle(), &hr, MOE_ACT_GELU_TANH, &ar), "gated_act"); });
  }
  for (moe_dtype tt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    Tensor table = upload(be, random_floats(kVocab * kDim, 21), tt, {kVocab, kDim});
    std::vector<int32_t> ids(t);
    std::mt19937 rng(5);
    for (auto& i : ids) i = static_cast<int32_t>(rng() % kVocab);
    Tensor ti = upload_i32(be, ids, {t});
    moe_tensor ir = ti.ref(), tr = table.ref();
    std::string what = std::string("embedding 2048 ids, ") + dtype_name(tt) + " [32000 x 512]";
    row(what.c_str(), t * kDim * (4.0 + (tt == MOE_DTYPE_BF16 ? 2 : 4)),
        [&] { check(be, be.ops().embedding(be.handle(), &ir, &tr, &yr), "embedding"); });
  }
  {
    Tensor logits = upload(be, random_floats(t * kExperts, 22, 3.f), MOE_DTYPE_F32, {t, kExperts});
    Tensor ids = Tensor::empty(be, MOE_DTYPE_I32, {t, kTopK}), wts = Tensor::empty(be, MOE_DTYPE_F32, {t, kTopK});
    moe_tensor lr = logits.ref(), ir = ids.ref(), wr2 = wts.ref();
    row("route_softmax_topk [2048 x 16] top 2", t * (kExperts + 2 * kTopK) * 4.0,
        [&] { check(be, be.ops().route_softmax_topk(be.handle(), &lr, kTopK, 1, &ir, &wr2), "route_softmax_topk"); });
    Tensor logits256 = upload(be, random_floats(t * 256, 23, 3.f), MOE_DTYPE_F32, {t, 256});
    Tensor bias = upload(be, random_floats(256, 24, 0.1f), MOE_DTYPE_F32, {256});
    Tensor ids8 = Tensor::empty(be, MOE_DTYPE_I32, {t, 8}), wts8 = Tensor::empty(be, MOE_DTYPE_F32, {t, 8});
    moe_tensor l2 = logits256.ref(), br = bias.ref(), i8 = ids8.ref(), w8 = wts8.ref();
    row("route_sigmoid_group_topk [2048 x 256] 8/4 top 8", t * (256 + 16) * 4.0, [&] {
      check(be, be.ops().route_sigmoid_group_topk(be.handle(), &l2, &br, 8, 4, 8, 1, 2.5f, &i8, &w8),
            "route_sigmoid_group_topk");
    });
    Tensor sorted = Tensor::empty(be, MOE_DTYPE_F32, {t * kTopK, kDim});
    Tensor offsets = Tensor::empty(be, MOE_DTYPE_I64, {kExperts + 1});
    Tensor source = Tensor::empty(be, MOE_DTYPE_I32, {t * kTopK});
    check(be, be.ops().route_softmax_topk(be.handle(), &lr, kTopK, 1, &ir, &wr2), "route_softmax_topk");
    moe_tensor sr = sorted.ref(), orf = offsets.ref(), srcr = source.ref();
    row("moe_permute [2048 x 512] top 2", 3.0 * t * kTopK * kDim * 4,
        [&] { check(be, be.ops().moe_permute(be.handle(), &xr, &ir, kExperts, &sr, &orf, &srcr), "moe_permute"); });
    row("moe_unpermute [4096 x 512] -> [2048 x 512], accumulate", (t * kTopK + 2.0 * t) * kDim * 4,
        [&] { check(be, be.ops().moe_unpermute(be.handle(), &sr, &srcr, &wr2, 1, &yr), "moe_unpermute"); });
  }
  {
    Tensor k = upload(be, random_floats(t * kHeads * kHeadDim, 25), MOE_DTYPE_F32, {t, kHeads, kHeadDim});
    Tensor kc = Tensor::empty(be, MOE_DTYPE_F32, {kPrefillSeqs, kHeads, kPrefillLen, kHeadDim});
    Tensor vc = Tensor::empty(be, MOE_DTYPE_F32, {kPrefillSeqs, kHeads, kPrefillLen, kHeadDim});
    std::vector<int32_t> slot(t), pos(t);
    for (int64_t i = 0; i < t; ++i) {
      slot[i] = static_cast<int32_t>(i / kPrefillLen);
      pos[i] = static_cast<int32_t>(i % kPrefillLen);
    }
    Tensor ts = upload_i32(be, slot, {t}), tp = upload_i32(be, pos, {t});
    moe_tensor kr = k.ref(), kcr = kc.ref(), vcr = vc.ref(), sr = ts.ref(), pr = tp.ref();
    row("kv_store 2048 tokens x 8 heads x (64 + 64)", 4.0 * t * kHeads * kHeadDim * 4,
        [&] { check(be, be.ops().kv_store(be.handle(), &kr, &kr, &sr, &pr, &kcr, &vcr), "kv_store"); });
  }
}

// ------------------------------------------------------------------------------------------------

const moe_plugin_descriptor* cpu_plugin() {
  const char* env = std::getenv("MOE_PLUGIN_DIR");
  moe::PluginSearch search;
  search.application_dirs.push_back(env && *env ? env : MOE_BENCH_PLUGIN_DIR);
  search.use_environment = false;
  search.use_default_dir = false;
  for (const auto& p : moe::discover_plugins(search))
    if (p.kind == MOE_PLUGIN_KIND_BACKEND && p.name == "cpu" && p.state == MOE_PLUGIN_STATE_LOADED) return p.descriptor;
  std::fprintf(stderr, "no usable cpu backend plugin in %s\n", search.application_dirs[0].c_str());
  std::exit(1);
}

std::unique_ptr<Backend> make_backend(const moe_plugin_descriptor* d, int threads, const char* isa) {
  if (isa) setenv("MOE_CPU_ISA", isa, 1);
  moe_backend_options o{};
  o.struct_size = sizeof o;
  o.num_threads = threads;
  auto be = std::make_unique<Backend>(d, o);
  if (isa) unsetenv("MOE_CPU_ISA");
  return be;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!std::strcmp(argv[i], "--quick"))
      g_quick = true;
    else if (!std::strcmp(argv[i], "--cpu-time"))
      g_cpu_time = true;
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--quick] [--only SECTION] [--cpu-time]\n", argv[0]);
      return 2;
    }
  }
  auto wanted = [&only](const char* section) { return only.empty() || only == section; };
  if (threads <= 0) threads = omp_get_num_procs();
  omp_set_num_threads(threads);  // for the oneDNN peers, which size themselves by this
  try {
    const moe_plugin_descriptor* plugin = cpu_plugin();
    auto be = make_backend(plugin, threads, nullptr);
    std::unique_ptr<Backend> avx2;
    if (__builtin_cpu_supports("avx512f")) avx2 = make_backend(plugin, threads, "avx2");
    std::printf("backend: %s\n", be->description().c_str());
    const Ceilings ceil = measure_ceilings(threads);
    std::printf(
        "ceilings (%d threads): memory copy %.1f GB/s (read + write), f32 FMA %.0f GFLOP/s, bf16 dot %.0f GFLOP/s\n",
        threads, ceil.copy_gbs, ceil.f32_gflops, ceil.bf16_gflops);
    if (wanted("gemv")) bench_gemv(*be, avx2.get(), ceil);
    if (wanted("small_m")) bench_small_m(*be);
    if (wanted("prefill")) bench_prefill_gemm(*be, ceil);
    if (wanted("strategies")) bench_expert_strategies(ceil);
    if (wanted("expert_mlp")) bench_expert_mlp(*be, ceil);
    if (wanted("attention")) bench_attention(*be, ceil);
    if (wanted("memory")) bench_memory_ops(*be, ceil);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
