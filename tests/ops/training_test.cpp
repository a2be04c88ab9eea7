// The training ops: backward passes, cross-entropy, AdamW, sum of squares, scaling and Gumbel noise.
// The references' gradients are first checked against central finite differences of the reference
// forward passes (ReferenceGradients), so a backend is compared to gradients known to be right.
#include <cmath>
#include <functional>

#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

// ---- the references themselves ----

// Central differences of f (a scalar function of v) at every element of v. The references take float
// inputs, so the steps are float values and the quotient uses the step actually taken.
std::vector<double> finite_differences(std::vector<double> v,
                                       const std::function<double(const std::vector<double>&)>& f) {
  std::vector<double> grad(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double h = 1e-3 * std::max(1.0, std::fabs(v[i])), keep = v[i];
    const double above = static_cast<float>(keep + h), below = static_cast<float>(keep - h);
    v[i] = above;
    const double up = f(v);
    v[i] = below;
    const double down = f(v);
    v[i] = keep;
    grad[i] = (up - down) / (above - below);
  }
  return grad;
}

std::vector<float> as_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

double dot(const std::vector<double>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Steps of 1e-3 leave a truncation error of order 1e-6 relative; the analytic gradients must agree
// to 1e-5.
constexpr double kFiniteDifferenceTolerance = 1e-5;

TEST(ReferenceGradients, MatchFiniteDifferences) {
  {  // rmsnorm: d(dy . y)/dx
    auto x = random_floats(2 * 7, 1), w = random_floats(7, 2), dy = random_floats(2 * 7, 3);
    auto g = reference::rmsnorm_backward(x, w, dy, 1e-5);
    auto fd = finite_differences(to_double(x), [&](const std::vector<double>& v) {
      return dot(reference::rmsnorm(as_float(v), w, 1e-5), dy);
    });
    EXPECT_TRUE(close_to(as_float(g.dx), fd, kFiniteDifferenceTolerance)) << "rmsnorm dx";
  }
  for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
    auto x = random_floats(2 * 10, 4, -3.f, 3.f), dy = random_floats(2 * 5, 5);
    auto fd = finite_differences(to_double(x), [&](const std::vector<double>& v) {
      return dot(reference::gated_act(as_float(v), 2, 5, act), dy);
    });
    EXPECT_TRUE(close_to(as_float(reference::gated_act_backward(x, dy, 2, 5, act)), fd, kFiniteDifferenceTolerance))
        << "gated_act activation " << act;
  }
  {  // attention: d(dout . out)/dq and /dk_cache
    const int64_t tokens = 3, heads = 2, kv_heads = 1, dk = 4, dv = 3, capacity = 5;
    std::vector<int32_t> slot = {0, 0, 0}, kv_len = {2, 5, 3};
    auto q = random_floats(tokens * heads * dk, 6), kc = random_floats(capacity * dk, 7);
    auto vc = random_floats(capacity * dv, 8), dout = random_floats(tokens * heads * dv, 9);
    auto g =
        reference::attention_backward(q, tokens, heads, dk, kc, vc, kv_heads, capacity, dv, slot, kv_len, 0.5, dout,
                                      std::vector<double>(kc.size(), 0.0), std::vector<double>(vc.size(), 0.0));
    auto fq = finite_differences(to_double(q), [&](const std::vector<double>& v) {
      return dot(
          reference::attention(as_float(v), tokens, heads, dk, kc, vc, kv_heads, capacity, dv, slot, kv_len, 0.5),
          dout);
    });
    auto fk = finite_differences(to_double(kc), [&](const std::vector<double>& v) {
      return dot(reference::attention(q, tokens, heads, dk, as_float(v), vc, kv_heads, capacity, dv, slot, kv_len, 0.5),
                 dout);
    });
    auto fv = finite_differences(to_double(vc), [&](const std::vector<double>& v) {
      return dot(reference::attention(q, tokens, heads, dk, kc, as_float(v), kv_heads, capacity, dv, slot, kv_len, 0.5),
                 dout);
    });
    EXPECT_TRUE(close_to(as_float(g.dq), fq, kFiniteDifferenceTolerance)) << "attention dq";
    EXPECT_TRUE(close_to(as_float(g.dk_cache), fk, kFiniteDifferenceTolerance)) << "attention dk";
    EXPECT_TRUE(close_to(as_float(g.dv_cache), fv, kFiniteDifferenceTolerance)) << "attention dv";
  }
  for (bool normalize : {false, true}) {  // routers, with an expert chosen twice to exercise the sums
    const int64_t experts = 6, top_k = 3;
    std::vector<int32_t> ids = {4, 1, 4, 0, 5, 2};
    auto logits = random_floats(2 * experts, 10, -2.f, 2.f), dw = random_floats(2 * top_k, 11);
    auto fs = finite_differences(to_double(logits), [&](const std::vector<double>& v) {
      return dot(reference::softmax_route_weights(v, experts, ids, top_k, normalize), dw);
    });
    EXPECT_TRUE(close_to(as_float(reference::route_softmax_topk_backward(logits, experts, ids, top_k, normalize, dw)),
                         fs, kFiniteDifferenceTolerance))
        << "softmax router, normalize " << normalize;
    auto fg = finite_differences(to_double(logits), [&](const std::vector<double>& v) {
      return dot(reference::sigmoid_route_weights(v, experts, ids, top_k, normalize, 2.5), dw);
    });
    EXPECT_TRUE(
        close_to(as_float(reference::route_sigmoid_topk_backward(logits, experts, ids, top_k, normalize, 2.5, dw)), fg,
                 kFiniteDifferenceTolerance))
        << "sigmoid router, normalize " << normalize;
  }
  {  // expert MLP: d(dy . y)/dx and /dweights
    const int64_t dim = 3, width = 2;
    std::vector<int64_t> offsets = {0, 2, 2, 3};
    auto x = random_floats(3 * dim, 12), gu = random_floats(3 * 2 * width * dim, 13);
    auto dn = random_floats(3 * dim * width, 14), dy = random_floats(3 * dim, 15);
    auto g = reference::expert_mlp_backward(x, dim, offsets, gu, dn, width, MOE_ACT_SILU, dy,
                                            std::vector<double>(gu.size(), 0.0), std::vector<double>(dn.size(), 0.0));
    auto f = [&](const std::vector<float>& xv, const std::vector<float>& guv, const std::vector<float>& dnv) {
      return dot(reference::expert_mlp(xv, dim, offsets, guv, dnv, width, MOE_ACT_SILU), dy);
    };
    EXPECT_TRUE(close_to(as_float(g.dx),
                         finite_differences(to_double(x), [&](auto& v) { return f(as_float(v), gu, dn); }),
                         kFiniteDifferenceTolerance));
    EXPECT_TRUE(close_to(as_float(g.dgate_up),
                         finite_differences(to_double(gu), [&](auto& v) { return f(x, as_float(v), dn); }),
                         kFiniteDifferenceTolerance));
    EXPECT_TRUE(close_to(as_float(g.ddown),
                         finite_differences(to_double(dn), [&](auto& v) { return f(x, gu, as_float(v)); }),
                         kFiniteDifferenceTolerance));
  }
  {  // cross-entropy with label smoothing: d(sum of losses)/dlogits
    auto logits = random_floats(3 * 5, 16, -3.f, 3.f);
    std::vector<int32_t> labels = {2, -100, 4};
    auto ce = reference::cross_entropy(logits, 5, labels, -100, 0.1, 1.0);
    auto fd = finite_differences(to_double(logits), [&](const std::vector<double>& v) {
      auto l = reference::cross_entropy(as_float(v), 5, labels, -100, 0.1, 1.0).loss;
      return l[0] + l[1] + l[2];
    });
    EXPECT_TRUE(close_to(as_float(ce.dlogits), fd, kFiniteDifferenceTolerance)) << "cross-entropy";
  }
}

// Random123's published known-answer vectors (its kat_vectors file).
TEST(ReferenceGradients, PhiloxKnownAnswers) {
  EXPECT_EQ(reference::philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::vector<uint32_t>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(reference::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (std::vector<uint32_t>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(reference::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (std::vector<uint32_t>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// ---- the backends ----

class TrainingTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(TrainingTest);

TEST_P(TrainingTest, RmsnormBackward) {
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (bool alias : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "weight " << wt << (alias ? ", dx aliases dy" : ""));
      const int64_t rows = 6, width = 37;
      auto x = random_floats(rows * width, 601), dy = random_floats(rows * width, 602);
      auto w = rounded_if_bf16(random_floats(width, 603), wt), dw0 = random_floats(width, 604);
      Tensor tdy = upload_f32(dy, {rows, width});
      Tensor tdx = alias ? tdy : poisoned(MOE_DTYPE_F32, {rows, width});
      Tensor tdw = upload_f32(dw0, {width});
      ops::rmsnorm_backward(upload_f32(x, {rows, width}), upload_float(w, wt, {width}), tdy, 1e-5f, tdx, &tdw);
      auto want = reference::rmsnorm_backward(x, w, dy, 1e-5);
      for (int64_t j = 0; j < width; ++j) want.dweight[j] += dw0[j];
      EXPECT_TRUE(close_to(download_f32(tdx), want.dx, kF32Tolerance));
      EXPECT_TRUE(close_to(download_f32(tdw), want.dweight, kF32Tolerance));
    }
  }
}

TEST_P(TrainingTest, GatedActBackward) {
  for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
    SCOPED_TRACE(::testing::Message() << "activation " << act);
    auto x = random_floats(5 * 2 * 37, 611, -5.f, 5.f), dy = random_floats(5 * 37, 612);
    Tensor tx = upload_f32(x, {5, 74}), tdy = upload_f32(dy, {5, 37});
    poison_next_allocations({5 * 74 * sizeof(float)});
    Tensor dx = ops::gated_act_backward(tx, tdy, act);
    EXPECT_TRUE(close_to(download_f32(dx), reference::gated_act_backward(x, dy, 5, 37, act), kF32Tolerance));
  }
}

TEST_P(TrainingTest, EmbeddingBackwardAccumulatesRepeatedIds) {
  const int64_t vocab = 20, dim = 37;
  std::vector<int32_t> ids = {3, 7, 3, 19, 0, 3};
  auto dout = random_floats(ids.size() * dim, 621), table = random_floats(vocab * dim, 622);
  Tensor tt = upload_f32(table, {vocab, dim});
  ops::embedding_backward(upload_i32(ids, {6}), upload_f32(dout, {6, dim}), tt);
  std::vector<double> want = to_double(table);
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t c = 0; c < dim; ++c) want[ids[t] * dim + c] += dout[t * dim + c];
  EXPECT_TRUE(close_to(download_f32(tt), want, kF32Tolerance));
  EXPECT_TRUE(fails_with([&] { ops::embedding_backward(upload_i32({1, 20}, {2}), upload_f32(dout, {2, dim}), tt); },
                         MOE_ERR_INVALID_ARGUMENT, {"ids[1]", "20"}));
}

TEST_P(TrainingTest, KvLoadReadsWhatKvStoreWrote) {
  const int64_t tokens = 5, slots = 3, kv_heads = 2, capacity = 9, dk = 6, dv = 5;
  std::vector<int32_t> slot = {2, 0, 2, 1, 0}, position = {0, 8, 7, 3, 4};
  auto k = random_floats(tokens * kv_heads * dk, 631), v = random_floats(tokens * kv_heads * dv, 632);
  Tensor kc = upload_f32(random_floats(slots * kv_heads * capacity * dk, 633), {slots, kv_heads, capacity, dk});
  Tensor vc = upload_f32(random_floats(slots * kv_heads * capacity * dv, 634), {slots, kv_heads, capacity, dv});
  Tensor ts = upload_i32(slot, {tokens}), tp = upload_i32(position, {tokens});
  ops::kv_store(upload_f32(k, {tokens, kv_heads, dk}), upload_f32(v, {tokens, kv_heads, dv}), ts, tp, kc, vc);
  Tensor k_back = poisoned(MOE_DTYPE_F32, {tokens, kv_heads, dk}),
         v_back = poisoned(MOE_DTYPE_F32, {tokens, kv_heads, dv});
  ops::kv_load(kc, vc, ts, tp, k_back, v_back);
  EXPECT_EQ(download_f32(k_back), k);
  EXPECT_EQ(download_f32(v_back), v);
}

TEST_P(TrainingTest, AttentionBackward) {
  // Two ragged causal sequences in swapped slots, GQA (4 heads on 2 kv heads), dk != dv.
  const int64_t heads = 4, kv_heads = 2, dk = 12, dv = 8, slots = 2, capacity = 24;
  std::vector<int32_t> slot, kv_len;
  for (int32_t i = 0; i < 9; ++i) slot.push_back(1), kv_len.push_back(i + 1);
  for (int32_t i = 0; i < 6; ++i) slot.push_back(0), kv_len.push_back(10 + i + 1);
  const int64_t tokens = static_cast<int64_t>(slot.size());
  auto q = random_floats(tokens * heads * dk, 641), kc = random_floats(slots * kv_heads * capacity * dk, 642);
  auto vc = random_floats(slots * kv_heads * capacity * dv, 643), dout = random_floats(tokens * heads * dv, 644);
  auto dk0 = random_floats(kc.size(), 645), dv0 = random_floats(vc.size(), 646);
  Tensor tq = upload_f32(q, {tokens, heads, dk});
  Tensor tkc = upload_f32(kc, {slots, kv_heads, capacity, dk}), tvc = upload_f32(vc, {slots, kv_heads, capacity, dv});
  Tensor ts = upload_i32(slot, {tokens}), tl = upload_i32(kv_len, {tokens});
  Tensor out = poisoned(MOE_DTYPE_F32, {tokens, heads, dv});
  ops::attention(tq, tkc, tvc, ts, tl, 0.3f, out);
  Tensor dq = poisoned(MOE_DTYPE_F32, {tokens, heads, dk});
  Tensor dkc = upload_f32(dk0, {slots, kv_heads, capacity, dk}), dvc = upload_f32(dv0, {slots, kv_heads, capacity, dv});
  ops::attention_backward(tq, tkc, tvc, ts, tl, 0.3f, out, upload_f32(dout, {tokens, heads, dv}), dq, dkc, dvc);
  auto want = reference::attention_backward(q, tokens, heads, dk, kc, vc, kv_heads, capacity, dv, slot, kv_len, 0.3,
                                            dout, to_double(dk0), to_double(dv0));
  EXPECT_TRUE(close_to(download_f32(dq), want.dq, kF32Tolerance));
  EXPECT_TRUE(close_to(download_f32(dkc), want.dk_cache, kF32Tolerance));
  EXPECT_TRUE(close_to(download_f32(dvc), want.dv_cache, kF32Tolerance));
}

TEST_P(TrainingTest, RouterBackward) {
  const int64_t tokens = 9, experts = 16;
  const int top_k = 4;
  auto logits = random_floats(tokens * experts, 651, -3.f, 3.f), dw = random_floats(tokens * top_k, 652);
  Tensor tl = upload_f32(logits, {tokens, experts}), tdw = upload_f32(dw, {tokens, top_k});
  for (bool normalize : {false, true}) {
    SCOPED_TRACE(normalize ? "normalized" : "not normalized");
    ops::Routing r = ops::route_softmax_topk(tl, top_k, normalize);
    auto ids = r.ids.to_vector<int32_t>();
    poison_next_allocations({tokens * experts * sizeof(float)});
    Tensor d = ops::route_softmax_topk_backward(tl, r.ids, normalize, tdw);
    EXPECT_TRUE(close_to(download_f32(d),
                         reference::route_softmax_topk_backward(logits, experts, ids, top_k, normalize, dw),
                         kF32Tolerance));
    ops::Routing s = ops::route_sigmoid_group_topk(tl, nullptr, 4, 2, top_k, normalize, 2.5f);
    ids = s.ids.to_vector<int32_t>();
    poison_next_allocations({tokens * experts * sizeof(float)});
    d = ops::route_sigmoid_topk_backward(tl, s.ids, normalize, 2.5f, tdw);
    EXPECT_TRUE(close_to(download_f32(d),
                         reference::route_sigmoid_topk_backward(logits, experts, ids, top_k, normalize, 2.5, dw),
                         kF32Tolerance));
  }
}

TEST_P(TrainingTest, UnpermuteBackward) {
  const int64_t tokens = 7, top_k = 2, dim = 19;
  std::vector<int32_t> ids = {0, 2, 4, 1, 2, 0, 1, 4, 2, 2, 0, 4, 1, 0};
  reference::Permuted p = reference::moe_permute(random_floats(tokens * dim, 661), dim, ids, top_k, 5);
  auto y = random_floats(tokens * top_k * dim, 662), w = random_floats(tokens * top_k, 663),
       dout = random_floats(tokens * dim, 664);
  Tensor ty = upload_f32(y, {tokens * top_k, dim}), tsrc = upload_i32(p.source, {tokens * top_k});
  Tensor tw = upload_f32(w, {tokens, top_k}), tdout = upload_f32(dout, {tokens, dim});
  auto want = reference::moe_unpermute_backward(y, dim, p.source, w, top_k, dout);
  Tensor dy = poisoned(MOE_DTYPE_F32, {tokens * top_k, dim}), dw = poisoned(MOE_DTYPE_F32, {tokens, top_k});
  ops::moe_unpermute_backward(ty, tsrc, tw, tdout, dy, &dw);
  EXPECT_TRUE(close_to(download_f32(dy), want.dy_sorted, kF32Tolerance));
  EXPECT_TRUE(close_to(download_f32(dw), want.dweights, kF32Tolerance));
  Tensor dy_only = poisoned(MOE_DTYPE_F32, {tokens * top_k, dim});
  ops::moe_unpermute_backward(ty, tsrc, tw, tdout, dy_only, nullptr);
  EXPECT_TRUE(close_to(download_f32(dy_only), want.dy_sorted, kF32Tolerance));
}

TEST_P(TrainingTest, ExpertMlpBackward) {
  // Rows per expert: 0, 1 (small-M path), 6 and 21 (matmul paths, padded by the CPU backend).
  const std::vector<int64_t> offsets = {0, 0, 1, 7, 28};
  const int64_t experts = 4, rows = 28, dim = 24, width = 40;
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
      SCOPED_TRACE(::testing::Message() << "weights " << wt << " activation " << act);
      auto x = random_floats(rows * dim, 671), dy = random_floats(rows * dim, 672);
      auto gu = rounded_if_bf16(random_floats(experts * 2 * width * dim, 673, -0.3f, 0.3f), wt);
      auto dn = rounded_if_bf16(random_floats(experts * dim * width, 674, -0.3f, 0.3f), wt);
      auto dgu0 = random_floats(gu.size(), 675), ddn0 = random_floats(dn.size(), 676);
      Tensor tx = upload_f32(x, {rows, dim}), tdy = upload_f32(dy, {rows, dim});
      Tensor toff = Tensor::from_host(be(), MOE_DTYPE_I64, {experts + 1}, offsets.data());
      Tensor tgu = upload_float(gu, wt, {experts, 2 * width, dim}), tdn = upload_float(dn, wt, {experts, dim, width});
      Tensor dx = poisoned(MOE_DTYPE_F32, {rows, dim});
      Tensor dgu = upload_f32(dgu0, {experts, 2 * width, dim}), ddn = upload_f32(ddn0, {experts, dim, width});
      ops::expert_mlp_backward(tx, toff, tgu, tdn, act, tdy, &dx, &dgu, &ddn);
      auto want =
          reference::expert_mlp_backward(x, dim, offsets, gu, dn, width, act, dy, to_double(dgu0), to_double(ddn0));
      EXPECT_TRUE(close_to(download_f32(dx), want.dx, tolerance_for(wt)));
      EXPECT_TRUE(close_to(download_f32(dgu), want.dgate_up, tolerance_for(wt)));
      EXPECT_TRUE(close_to(download_f32(ddn), want.ddown, tolerance_for(wt)));
      // Frozen weights: only dx.
      Tensor dx_only = poisoned(MOE_DTYPE_F32, {rows, dim});
      ops::expert_mlp_backward(tx, toff, tgu, tdn, act, tdy, &dx_only, nullptr, nullptr);
      EXPECT_TRUE(close_to(download_f32(dx_only), want.dx, tolerance_for(wt)));
    }
  }
}

TEST_P(TrainingTest, CrossEntropy) {
  const int64_t rows = 6, vocab = 1003;
  std::vector<int32_t> labels = {5, -100, 1002, 0, 77, -100};
  for (double smoothing : {0.0, 0.1}) {
    for (bool in_place : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "smoothing " << smoothing << (in_place ? ", dlogits in place" : ""));
      auto logits = random_floats(rows * vocab, 681, -4.f, 4.f);
      Tensor tl = upload_f32(logits, {rows, vocab}), tlab = upload_i32(labels, {rows});
      Tensor loss = poisoned(MOE_DTYPE_F32, {rows});
      Tensor dl = in_place ? tl : poisoned(MOE_DTYPE_F32, {rows, vocab});
      ops::cross_entropy(tl, tlab, -100, static_cast<float>(smoothing), 0.25f, loss, &dl);
      auto want = reference::cross_entropy(logits, vocab, labels, -100, smoothing, 0.25);
      EXPECT_TRUE(close_to(download_f32(loss), want.loss, kF32Tolerance));
      EXPECT_TRUE(close_to(download_f32(dl), want.dlogits, kF32Tolerance));
    }
  }
  auto logits = random_floats(rows * vocab, 682);
  Tensor tl = upload_f32(logits, {rows, vocab}), loss = poisoned(MOE_DTYPE_F32, {rows});
  ops::cross_entropy(tl, upload_i32(labels, {rows}), -100, 0.f, 1.f, loss, nullptr);  // evaluation only
  EXPECT_TRUE(close_to(download_f32(loss), reference::cross_entropy(logits, vocab, labels, -100, 0.0, 1.0).loss,
                       kF32Tolerance));
  std::vector<int32_t> bad = labels;
  bad[3] = static_cast<int32_t>(vocab);
  EXPECT_TRUE(fails_with([&] { ops::cross_entropy(tl, upload_i32(bad, {rows}), -100, 0.f, 1.f, loss, nullptr); },
                         MOE_ERR_INVALID_ARGUMENT, {"labels[3]", "1003"}));
}

TEST_P(TrainingTest, AdamWSteps) {
  const int64_t n = 100003;
  auto p0 = random_floats(n, 691);
  reference::AdamState want{to_double(p0), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  Tensor p = upload_f32(p0, {n});
  Tensor m = Tensor::zeros(be(), MOE_DTYPE_F32, {n}), v = Tensor::zeros(be(), MOE_DTYPE_F32, {n});
  for (int64_t step = 1; step <= 3; ++step) {
    auto g = random_floats(n, 700 + static_cast<uint32_t>(step));
    ops::adamw_update(p, upload_f32(g, {n}), m, v, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
    reference::adamw_update(want, g, 1e-2, 0.9, 0.999, 1e-8, 0.1, step);
  }
  EXPECT_TRUE(close_to(download_f32(p), want.param, kF32Tolerance));
  EXPECT_TRUE(close_to(download_f32(m), want.m, kF32Tolerance));
  EXPECT_TRUE(close_to(download_f32(v), want.v, kF32Tolerance));
}

TEST_P(TrainingTest, SumSquaresAndScale) {
  auto x = random_floats(300007, 711);
  double want = 0;
  for (float v : x) want += static_cast<double>(v) * v;
  Tensor tx = upload_f32(x, {300007});
  EXPECT_NEAR(ops::sum_squares(tx), want, want * 1e-6);
  ops::scale(tx, -0.5f);
  std::vector<double> scaled(x.size());
  for (size_t i = 0; i < x.size(); ++i) scaled[i] = -0.5 * x[i];
  EXPECT_TRUE(close_to(download_f32(tx), scaled, kF32Tolerance));
}

TEST_P(TrainingTest, GumbelNoiseIsPhiloxDrawnAndReproducible) {
  const int64_t tokens = 13, experts = 16;
  const uint64_t seed = 0x123456789abcdefull, offset = (uint64_t{1} << 32) - 100;  // crosses the counter's low word
  auto logits = random_floats(tokens * experts, 721);
  Tensor tl = upload_f32(logits, {tokens, experts});
  ops::add_gumbel_noise(tl, seed, offset, 0.5f);
  std::vector<double> want(logits.size());
  for (int64_t i = 0; i < tokens * experts; ++i) want[i] = logits[i] + 0.5 * reference::gumbel_noise(seed, offset + i);
  EXPECT_TRUE(close_to(download_f32(tl), want, kF32Tolerance));
}

}  // namespace
}  // namespace moe::testing
