// How long a recorded decode step takes against the same ops run one by one: a decode-like op sequence of
// the seed-1.2B Mixtral shapes (16 layers, d_model 1024, 16 heads of 64, 16 experts of width 1408, top-2,
// bf16 weights, each layer its own unless --shared-weights, each layer its own KV cache), batch 1, called
// through the backend's op table (plugin ABI 1.2: record_begin ... replay_step). Then each op group recorded
// alone over the 16 layers: its replay time per layer, launch gaps included. Prints a table and one JSON
// line. The positions move from step to step (inputs copied in before each replay), as in decoding.
// --fused-decode runs the ops as the model does with plugin ABI 1.5: the attention's norm and q/k/v product
// as rmsnorm_linear, q, k and v as views of its row rotated and stored by rope_kv_store, the experts' norm,
// router product, routing and dispatch as route_and_permute, the experts and their combination as
// expert_mlp_unpermute (on CUDA their fused kernels also need MOE_CUDA_FUSED_DECODE=1), instead of two,
// five, four and two ops.
//
// Usage: moe_bench_recorded_step [--backend cuda] [--plugin-dir DIR] [--capacity N] [--shared-weights]
//                                [--fused-decode]
//   (default plugin dir: MOE_PLUGIN_DIR; capacity: the KV cache's positions, 4096 by default; the decode
//   benchmark's generate calls use 81: a 16-id prompt and 65 new tokens)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "context.h"
#include "tensor/tensor.h"

namespace {

using moe::Backend;
using moe::Tensor;

// A seeded pattern of n values in [-s, s).
std::vector<float> pattern(int64_t n, uint32_t seed, float s) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t state = seed * 2654435761u + 1;
  for (auto& e : v) {
    state = state * 1664525u + 1013904223u;
    e = s * (static_cast<float>(state >> 8) / 16777216.f * 2.f - 1.f);
  }
  return v;
}

struct Bench {
  Backend& be;
  std::deque<moe_tensor> refs;  // descriptors that outlive the recording (the op table takes pointers)

  moe_tensor* ref(const Tensor& t) {
    refs.push_back(t.ref());
    return &refs.back();
  }
  void check(moe_status status, const char* op) { be.check(status, op); }
  moe_backend* h() { return be.handle(); }
  const moe_backend_ops& op() { return be.ops(); }
  Tensor f32(const std::vector<float>& v, moe::Shape shape) {
    return Tensor::from_host(be, MOE_DTYPE_F32, std::move(shape), v.data());
  }
  Tensor bf16(const std::vector<float>& v, moe::Shape shape) {
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = moe::f32_to_bf16(v[i]);
    return Tensor::from_host(be, MOE_DTYPE_BF16, std::move(shape), b.data());
  }
  Tensor i32(const std::vector<int32_t>& v, moe::Shape shape) {
    return Tensor::from_host(be, MOE_DTYPE_I32, std::move(shape), v.data());
  }
  Tensor zeros(moe_dtype dtype, moe::Shape shape) { return Tensor::zeros(be, dtype, std::move(shape)); }
  moe_recorded_step* record(const std::function<void()>& ops) {
    check(op().record_begin(h()), "record_begin");
    ops();
    moe_recorded_step* step = nullptr;
    check(op().record_end(h(), &step), "record_end");
    return step;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "cuda";
  const char* plugin_dir = std::getenv("MOE_PLUGIN_DIR");
  int64_t capacity = 4096;
  bool shared_weights = false, fused_decode = false;
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: moe_bench_recorded_step [--backend NAME] [--plugin-dir DIR] [--capacity N >= 32] "
                 "[--shared-weights] [--fused-decode]\n");
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--shared-weights" || arg == "--fused-decode") {
      (arg == "--shared-weights" ? shared_weights : fused_decode) = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    const char* value = argv[++i];
    if (arg == "--backend") backend = value;
    else if (arg == "--plugin-dir") plugin_dir = value;
    else if (arg == "--capacity" && std::atoll(value) >= 32) capacity = std::atoll(value);
    else return usage();
  }
  try {
    moe::ContextOptions o;
    o.backend = backend;
    if (plugin_dir) o.search.application_dirs = {plugin_dir};
    moe::Context ctx(std::move(o));
    Backend& be = ctx.backend();
    if (!be.can_record()) {
      std::fprintf(stderr, "backend '%s' cannot record steps\n", be.name().c_str());
      return 1;
    }
    Bench b{be, {}};
    const int64_t dim = 1024, heads = 16, hd = 64, experts = 16, top_k = 2, width = 1408, layers = 16;
    const float scale = 0.125f, ws = 1.f / 32.f;
    Tensor norm_w = b.f32(std::vector<float>(dim, 1.f), {dim});
    // Each layer its own weights (25.7 MB a layer, 411 MB in all: read from device memory, as a model's
    // are), or with --shared-weights one layer's for all (they then stay in L2: the launch-bound floor).
    std::vector<Tensor> wqkv, wo, router, gate_up, down;
    for (int64_t l = 0; l < (shared_weights ? 1 : layers); ++l) {
      const uint32_t seed = static_cast<uint32_t>(10 * l);
      wqkv.push_back(b.bf16(pattern(3 * dim * dim, seed + 1, ws), {3 * dim, dim}));
      wo.push_back(b.bf16(pattern(dim * dim, seed + 2, ws), {dim, dim}));
      router.push_back(b.bf16(pattern(experts * dim, seed + 3, ws), {experts, dim}));
      gate_up.push_back(b.bf16(pattern(experts * 2 * width * dim, seed + 4, ws), {experts, 2 * width, dim}));
      down.push_back(b.bf16(pattern(experts * dim * width, seed + 5, ws), {experts, dim, width}));
    }
    auto w = [&](const std::vector<Tensor>& per_layer, int64_t l) -> const Tensor& {
      return per_layer[shared_weights ? 0 : static_cast<size_t>(l)];
    };
    Tensor cos_t = b.f32(pattern(capacity * hd / 2, 6, 1.f), {capacity, hd / 2});
    Tensor sin_t = b.f32(pattern(capacity * hd / 2, 7, 1.f), {capacity, hd / 2});
    std::vector<Tensor> kc, vc;
    for (int64_t l = 0; l < layers; ++l) {
      kc.push_back(b.zeros(MOE_DTYPE_F32, {1, heads, capacity, hd}));
      vc.push_back(b.zeros(MOE_DTYPE_F32, {1, heads, capacity, hd}));
    }
    Tensor slot = b.i32({0}, {1}), pos = b.i32({0}, {1}), len = b.i32({1}, {1});
    Tensor x = b.f32(pattern(dim, 8, 1.f), {1, dim}), hn = b.zeros(MOE_DTYPE_F32, {1, dim});
    Tensor qkv = b.zeros(MOE_DTYPE_F32, {1, 3 * dim});
    // The model's one-token step reads q, k and v as views of the q/k/v row (--fused-decode).
    Tensor qkv_heads = qkv.view({3 * heads, hd});
    Tensor qv = qkv_heads.slice(0, heads).view({1, heads, hd});
    Tensor kv = qkv_heads.slice(heads, 2 * heads).view({1, heads, hd});
    Tensor vv = qkv_heads.slice(2 * heads, 3 * heads).view({1, heads, hd});
    Tensor q = b.zeros(MOE_DTYPE_F32, {1, heads, hd}), k = b.zeros(MOE_DTYPE_F32, {1, heads, hd}),
           v = b.zeros(MOE_DTYPE_F32, {1, heads, hd}), att = b.zeros(MOE_DTYPE_F32, {1, heads, hd});
    Tensor logits = b.zeros(MOE_DTYPE_F32, {1, experts});
    Tensor rid = b.zeros(MOE_DTYPE_I32, {1, top_k}), rw = b.zeros(MOE_DTYPE_F32, {1, top_k});
    Tensor xs = b.zeros(MOE_DTYPE_F32, {top_k, dim}), off = b.zeros(MOE_DTYPE_I64, {experts + 1}),
           src = b.zeros(MOE_DTYPE_I32, {top_k}), ys = b.zeros(MOE_DTYPE_F32, {top_k, dim});
    auto h = [&] { return b.h(); };
    auto ref = [&](const Tensor& t) { return b.ref(t); };
    auto check = [&](moe_status s, const char* name) { b.check(s, name); };
    const moe_backend_ops& op = b.op();
    // The layer's ops in groups, each a function of the layer (so that each group can be recorded alone).
    std::vector<std::pair<const char*, std::function<void(int64_t)>>> groups = {
        {"rmsnorm (attention)", [&](int64_t) { check(op.rmsnorm(h(), ref(x), ref(norm_w), 1e-5f, ref(hn)), "rmsnorm"); }},
        {"gemm qkv", [&](int64_t l) {
           check(op.gemm(h(), 0, 1, 1, 3 * dim, dim, 1.f, hn.data(), MOE_DTYPE_F32, dim, w(wqkv, l).data(), MOE_DTYPE_BF16,
                         dim, 0.f, qkv.data(), MOE_DTYPE_F32, 3 * dim), "gemm");
         }},
        {"copy_2d x3", [&](int64_t) {
           for (auto [t, col] : {std::pair{&q, 0}, std::pair{&k, 1}, std::pair{&v, 2}})
             check(op.copy_2d(h(), static_cast<float*>(t->data()), dim, static_cast<float*>(qkv.data()) + col * dim,
                              3 * dim, 1, dim), "copy_2d");
         }},
        {"rope x2", [&](int64_t) {
           check(op.rope(h(), ref(q), ref(pos), ref(cos_t), ref(sin_t), 0, static_cast<int32_t>(hd), MOE_ROPE_NEOX), "rope");
           check(op.rope(h(), ref(k), ref(pos), ref(cos_t), ref(sin_t), 0, static_cast<int32_t>(hd), MOE_ROPE_NEOX), "rope");
         }},
        {"kv_store", [&](int64_t l) {
           check(op.kv_store(h(), ref(k), ref(v), ref(slot), ref(pos), ref(kc[l]), ref(vc[l])), "kv_store");
         }},
        {"attention", [&](int64_t l) {
           check(op.attention(h(), ref(q), ref(kc[l]), ref(vc[l]), ref(slot), ref(len), scale, ref(att)), "attention");
         }},
        {"gemm o (+ residual)", [&](int64_t l) {
           check(op.gemm(h(), 0, 1, 1, dim, dim, 1.f, att.data(), MOE_DTYPE_F32, dim, w(wo, l).data(), MOE_DTYPE_BF16, dim,
                         1.f, x.data(), MOE_DTYPE_F32, dim), "gemm");
         }},
        {"rmsnorm (experts)", [&](int64_t) { check(op.rmsnorm(h(), ref(x), ref(norm_w), 1e-5f, ref(hn)), "rmsnorm"); }},
        {"gemm router", [&](int64_t l) {
           check(op.gemm(h(), 0, 1, 1, experts, dim, 1.f, hn.data(), MOE_DTYPE_F32, dim, w(router, l).data(), MOE_DTYPE_BF16,
                         dim, 0.f, logits.data(), MOE_DTYPE_F32, experts), "gemm");
         }},
        {"route_softmax_topk", [&](int64_t) {
           check(op.route_softmax_topk(h(), ref(logits), static_cast<int32_t>(top_k), 1, ref(rid), ref(rw)),
                 "route_softmax_topk");
         }},
        {"moe_permute", [&](int64_t) {
           check(op.moe_permute(h(), ref(hn), ref(rid), static_cast<int32_t>(experts), ref(xs), ref(off), ref(src)),
                 "moe_permute");
         }},
        {"expert_mlp", [&](int64_t l) {
           check(op.expert_mlp(h(), ref(xs), ref(off), ref(w(gate_up, l)), ref(w(down, l)), MOE_ACT_SILU, ref(ys)),
                 "expert_mlp");
         }},
        {"moe_unpermute", [&](int64_t) { check(op.moe_unpermute(h(), ref(ys), ref(src), ref(rw), 1, ref(x)), "moe_unpermute"); }},
    };
    if (fused_decode) {
      if (!be.has_route_and_permute() || !be.has_rmsnorm_linear() || !be.has_expert_mlp_unpermute() ||
          !be.has_rope_kv_store()) {
        std::fprintf(stderr, "backend '%s' lacks one of the fused ops of plugin ABI 1.5\n", be.name().c_str());
        return 1;
      }
      auto named = [&](const char* name) {
        return std::find_if(groups.begin(), groups.end(),
                            [&](const auto& g) { return std::strcmp(g.first, name) == 0; });
      };
      // The two groups of the attention's norm and q/k/v product become one.
      auto at = groups.erase(named("rmsnorm (attention)"), named("gemm qkv") + 1);
      groups.insert(at, {"rmsnorm_linear qkv", [&](int64_t l) {
                           check(op.rmsnorm_linear(h(), ref(x), ref(norm_w), 1e-5f, ref(w(wqkv, l)), ref(hn), ref(qkv)),
                                 "rmsnorm_linear");
                         }});
      // The four groups from the experts' norm to "moe_permute" become one.
      at = groups.erase(named("rmsnorm (experts)"), named("moe_permute") + 1);
      groups.insert(at, {"route_and_permute", [&](int64_t l) {
                           check(op.route_and_permute(h(), ref(x), ref(norm_w), 1e-5f, ref(hn), ref(w(router, l)), 0,
                                                      nullptr, 1, 1, static_cast<int32_t>(top_k), 1, 1.f, ref(logits),
                                                      ref(rid), ref(rw), ref(xs), ref(off), ref(src)),
                                 "route_and_permute");
                         }});
      // q, k and v are views of the q/k/v row (no copies), rotated and stored by one op.
      at = groups.erase(named("copy_2d x3"), named("kv_store") + 1);
      groups.insert(at, {"rope_kv_store", [&](int64_t l) {
                           check(op.rope_kv_store(h(), ref(qv), ref(kv), ref(vv), ref(pos), ref(cos_t), ref(sin_t), 0,
                                                  static_cast<int32_t>(hd), MOE_ROPE_NEOX, ref(slot), ref(kc[l]),
                                                  ref(vc[l])),
                                 "rope_kv_store");
                         }});
      named("attention")->second = [&](int64_t l) {
        check(op.attention(h(), ref(qv), ref(kc[l]), ref(vc[l]), ref(slot), ref(len), scale, ref(att)), "attention");
      };
      // The experts and the combination of their outputs become one.
      at = groups.erase(named("expert_mlp"), named("moe_unpermute") + 1);
      groups.insert(at, {"expert_mlp_unpermute", [&](int64_t l) {
                           check(op.expert_mlp_unpermute(h(), ref(xs), ref(off), ref(w(gate_up, l)), ref(w(down, l)),
                                                         MOE_ACT_SILU, ref(src), ref(rw), 1, ref(ys), ref(x)),
                                 "expert_mlp_unpermute");
                         }});
    }
    auto step_ops = [&] {
      for (int64_t l = 0; l < layers; ++l)
        for (const auto& g : groups) g.second(l);
    };
    using clock = std::chrono::steady_clock;
    auto per_step_us = [&](const std::function<void(int32_t)>& run, int32_t first, int32_t count) {
      run(first);  // warm-up
      check(op.synchronize(h()), "synchronize");
      const auto start = clock::now();
      for (int32_t p = first + 1; p <= first + count; ++p) run(p);
      check(op.synchronize(h()), "synchronize");
      return std::chrono::duration<double, std::micro>(clock::now() - start).count() / count;
    };
    auto set_position = [&](int32_t p) {
      const int32_t position = p, length = p + 1;
      pos.copy_from_host(&position, sizeof position);
      len.copy_from_host(&length, sizeof length);
    };
    std::vector<moe_recorded_step*> steps;
    const double eager = per_step_us(
        [&](int32_t p) {
          set_position(p);
          step_ops();
        },
        0, 20);
    moe_recorded_step* step = b.record(step_ops);
    steps.push_back(step);
    // Positions from a quarter of the capacity on (101..300 of 4096): the replay's attention grid covers the
    // whole capacity either way.
    const int32_t first = static_cast<int32_t>(std::min<int64_t>(100, capacity / 4));
    const int32_t count = static_cast<int32_t>(std::min<int64_t>(200, capacity - 2 - first));
    const double replayed = per_step_us(
        [&](int32_t p) {
          set_position(p);
          check(op.replay_step(h(), step), "replay_step");
        },
        first, count);
    std::printf("decode-like step, seed-1.2B shapes, %lld layers, batch 1, KV capacity %lld, backend %s: op by op "
                "%.1f us, recorded and replayed %.1f us (%.1fx)\n",
                static_cast<long long>(layers), static_cast<long long>(capacity), be.name().c_str(), eager, replayed,
                eager / replayed);
    // Each group recorded alone over the layers (its residual adds grow x without bound: values not used).
    double sum = 0;
    std::string json_groups;
    for (const auto& g : groups) {
      moe_recorded_step* alone = b.record([&] {
        for (int64_t l = 0; l < layers; ++l) g.second(l);
      });
      steps.push_back(alone);
      const double us = per_step_us([&](int32_t) { check(op.replay_step(h(), alone), "replay_step"); }, first, count) /
                        static_cast<double>(layers);
      sum += us;
      std::printf("  %-22s %7.2f us per layer\n", g.first, us);
      json_groups += std::string(json_groups.empty() ? "" : ", ") + "\"" + g.first + "\": " + std::to_string(us);
    }
    std::printf("  %-22s %7.2f us per layer (the whole step: %.2f)\n", "sum of the groups", sum,
                replayed / static_cast<double>(layers));
    std::printf("{\"bench\": \"recorded_step\", \"backend\": \"%s\", \"capacity\": %lld, \"op_by_op_us\": %.1f, "
                "\"replayed_us\": %.1f, \"groups_us_per_layer\": {%s}}\n",
                be.name().c_str(), static_cast<long long>(capacity), eager, replayed, json_groups.c_str());
    for (moe_recorded_step* s : steps) op.destroy_step(h(), s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moe_bench_recorded_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
