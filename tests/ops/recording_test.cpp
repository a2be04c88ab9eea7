// Recorded steps (plugin ABI 1.2: record_begin, record_end, replay_step, destroy_step). For each op that
// takes indices: a recorded op replayed twice, with new values copied into its input buffers before each
// replay, gives what the op gives run eagerly on the same values; a replay that meets a bad index makes the
// next copy_to_host fail naming the op and the entry, and the instance works again afterwards. Also: what
// is refused while recording, and a decode-like sequence of ops (two layers of a MoE transformer) recorded
// once and replayed token after token. Backends without the record entries skip.
#include <cmath>
#include <cstddef>
#include <deque>
#include <functional>

#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class RecordingTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const moe_backend_ops& o = be().ops();
    if (o.struct_size < offsetof(moe_backend_ops, destroy_step) + sizeof(void*) || !o.record_begin ||
        !o.record_end || !o.replay_step || !o.destroy_step)
      GTEST_SKIP() << "backend '" << be().name() << "' has no record entries (plugin ABI 1.2 record_begin ... "
                   << "destroy_step): it cannot record steps";
  }
  void TearDown() override {
    // A test that failed in the middle of a recording must not leave the shared instance recording.
    if (recording_) {
      moe_recorded_step* step = nullptr;
      be().ops().record_end(be().handle(), &step);
      if (step) be().ops().destroy_step(be().handle(), step);
    }
    for (moe_recorded_step* s : steps_) be().ops().destroy_step(be().handle(), s);
  }

  // Records what `ops` calls (through the op table) and returns the step (freed in TearDown).
  moe_recorded_step* record(const std::function<void()>& ops) {
    be().check(be().ops().record_begin(be().handle()), "record_begin");
    recording_ = true;
    ops();
    moe_recorded_step* step = nullptr;
    const moe_status status = be().ops().record_end(be().handle(), &step);
    recording_ = false;
    be().check(status, "record_end");
    steps_.push_back(step);
    return step;
  }
  void replay(moe_recorded_step* step) { be().check(be().ops().replay_step(be().handle(), step), "replay_step"); }

  // A descriptor of `t` that lives as long as the test (the op table takes pointers).
  moe_tensor* ref(const Tensor& t) {
    refs_.push_back(t.ref());
    return &refs_.back();
  }
  void check(moe_status status, const char* op) { be().check(status, op); }
  moe_backend* h() { return be().handle(); }
  const moe_backend_ops& op() { return be().ops(); }

  template <typename T>
  void put(Tensor& t, const std::vector<T>& values) {
    t.copy_from_host(values.data(), values.size() * sizeof(T));
  }
  Tensor copy_of(const Tensor& t) {
    Tensor c = Tensor::empty(be(), t.dtype(), t.shape());
    ops::copy(t, c);
    return c;
  }

  bool recording_ = false;
  std::vector<moe_recorded_step*> steps_;
  std::deque<moe_tensor> refs_;
};
MOE_INSTANTIATE_FOR_BACKENDS(RecordingTest);

// The next wait for the device (a copy to the host) fails naming the op, the entry and its value (the
// range's wording is the backend's own).
::testing::AssertionResult next_copy_fails(const Tensor& t, const std::vector<std::string>& fragments) {
  return fails_with([&] { t.to_vector<uint8_t>(); }, MOE_ERR_INVALID_ARGUMENT, fragments);
}

TEST_P(RecordingTest, EmbeddingReplaysMatchEager) {
  const int64_t vocab = 50, dim = 24, tokens = 3;
  for (moe_dtype dt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    SCOPED_TRACE(dt);
    Tensor table = upload_float(rounded_if_bf16(random_floats(vocab * dim, 1), dt), dt, {vocab, dim});
    Tensor ids = upload_i32({0, 0, 0}, {tokens});
    Tensor out = poisoned(MOE_DTYPE_F32, {tokens, dim});
    moe_recorded_step* step = record([&] { check(op().embedding(h(), ref(ids), ref(table), ref(out)), "embedding"); });
    for (const std::vector<int32_t>& values : {std::vector<int32_t>{3, 49, 3}, std::vector<int32_t>{0, 17, 8}}) {
      put(ids, values);
      replay(step);
      EXPECT_EQ(out.to_vector<float>(), ops::embedding(upload_i32(values, {tokens}), table).to_vector<float>());
    }
    put(ids, std::vector<int32_t>{1, 50, 2});
    replay(step);
    EXPECT_TRUE(next_copy_fails(out, {"embedding", "ids[1] = 50"}));
    put(ids, std::vector<int32_t>{5, 6, 7});
    replay(step);
    EXPECT_EQ(out.to_vector<float>(), ops::embedding(ids, table).to_vector<float>());
  }
}

TEST_P(RecordingTest, RopeReplaysMatchEager) {
  const int64_t tokens = 2, heads = 3, hd = 8, max_pos = 10;
  Tensor cos_t = upload_f32(random_floats(max_pos * hd / 2, 2), {max_pos, hd / 2});
  Tensor sin_t = upload_f32(random_floats(max_pos * hd / 2, 3), {max_pos, hd / 2});
  Tensor x = upload_f32(random_floats(tokens * heads * hd, 4), {tokens, heads, hd});
  Tensor pos = upload_i32({0, 0}, {tokens});
  moe_recorded_step* step = record([&] {
    check(op().rope(h(), ref(x), ref(pos), ref(cos_t), ref(sin_t), 0, static_cast<int32_t>(hd), MOE_ROPE_NEOX),
          "rope");
  });
  for (uint32_t round = 0; round < 2; ++round) {
    const std::vector<float> xv = random_floats(tokens * heads * hd, 10 + round);
    const std::vector<int32_t> pv = {static_cast<int32_t>(round * 4 + 1), 9};
    put(x, xv);
    put(pos, pv);
    replay(step);
    Tensor want = upload_f32(xv, {tokens, heads, hd});
    ops::rope(want, upload_i32(pv, {tokens}), cos_t, sin_t, 0, static_cast<int>(hd), MOE_ROPE_NEOX);
    EXPECT_EQ(x.to_vector<float>(), want.to_vector<float>());
  }
  put(pos, std::vector<int32_t>{2, -1});
  replay(step);
  EXPECT_TRUE(next_copy_fails(x, {"rope", "positions[1] = -1"}));
  put(pos, std::vector<int32_t>{2, 3});
  replay(step);
  x.to_vector<float>();
}

// kv_store then attention against the stored keys: grouped-query heads (10 query heads per kv head, more
// than one block of heads), dk != dv, over a capacity of several splits of keys and over one short enough
// for the CUDA backend's one-pass kernel (256).
TEST_P(RecordingTest, KvStoreAndAttentionReplaysMatchEager) {
  for (const int32_t capacity : {600, 256}) {
    SCOPED_TRACE(capacity);
    const int64_t slots = 2, kv_heads = 2, heads = 20, dk = 24, dv = 16, tokens = 3;
    const float scale = 1.f / std::sqrt(static_cast<float>(dk));
    const std::vector<float> k_init = random_floats(slots * kv_heads * capacity * dk, 20);
    const std::vector<float> v_init = random_floats(slots * kv_heads * capacity * dv, 21);
    Tensor kc = upload_f32(k_init, {slots, kv_heads, capacity, dk}),
           vc = upload_f32(v_init, {slots, kv_heads, capacity, dv});
    Tensor kc_eager = upload_f32(k_init, kc.shape()), vc_eager = upload_f32(v_init, vc.shape());
    Tensor k = upload_f32(random_floats(tokens * kv_heads * dk, 22), {tokens, kv_heads, dk});
    Tensor v = upload_f32(random_floats(tokens * kv_heads * dv, 23), {tokens, kv_heads, dv});
    Tensor q = upload_f32(random_floats(tokens * heads * dk, 24), {tokens, heads, dk});
    Tensor slot = upload_i32({0, 0, 0}, {tokens}), pos = upload_i32({0, 0, 0}, {tokens}),
           len = upload_i32({1, 1, 1}, {tokens});
    Tensor out = poisoned(MOE_DTYPE_F32, {tokens, heads, dv});
    moe_recorded_step* step = record([&] {
      check(op().kv_store(h(), ref(k), ref(v), ref(slot), ref(pos), ref(kc), ref(vc)), "kv_store");
      check(op().attention(h(), ref(q), ref(kc), ref(vc), ref(slot), ref(len), scale, ref(out)), "attention");
    });
    // Round 0: one token per slot position far apart (the last position, the first, one past the middle);
    // round 1: decode-like lengths.
    const std::vector<std::vector<int32_t>> slots_of = {{1, 0, 1}, {0, 1, 0}};
    const std::vector<std::vector<int32_t>> positions = {{capacity - 1, 0, capacity / 2 - 43}, {4, capacity / 2, 5}};
    for (size_t round = 0; round < 2; ++round) {
      SCOPED_TRACE(round);
      const auto kv = random_floats(tokens * kv_heads * dk, 30 + round),
                 vv = random_floats(tokens * kv_heads * dv, 40 + round),
                 qv = random_floats(tokens * heads * dk, 50 + round);
      std::vector<int32_t> lv;
      for (int32_t p : positions[round]) lv.push_back(p + 1);
      put(k, kv);
      put(v, vv);
      put(q, qv);
      put(slot, slots_of[round]);
      put(pos, positions[round]);
      put(len, lv);
      replay(step);
      Tensor s_e = upload_i32(slots_of[round], {tokens}), p_e = upload_i32(positions[round], {tokens}),
             l_e = upload_i32(lv, {tokens});
      ops::kv_store(k, v, s_e, p_e, kc_eager, vc_eager);
      Tensor want = Tensor::empty(be(), MOE_DTYPE_F32, {tokens, heads, dv});
      ops::attention(q, kc_eager, vc_eager, s_e, l_e, scale, want);
      EXPECT_EQ(kc.to_vector<float>(), kc_eager.to_vector<float>());
      EXPECT_EQ(vc.to_vector<float>(), vc_eager.to_vector<float>());
      EXPECT_TRUE(close_to(out.to_vector<float>(), to_double(want.to_vector<float>()), kF32Tolerance));
    }
    // Bad entries: a slot of kv_store (reported by kv_store, the first op), then a kv_len of attention alone.
    put(slot, std::vector<int32_t>{0, 2, 0});
    replay(step);
    EXPECT_TRUE(next_copy_fails(out, {"kv_store", "slot[1] = 2"}));
    put(slot, std::vector<int32_t>{0, 1, 0});
    put(pos, std::vector<int32_t>{3, 4, 5});
    put(len, std::vector<int32_t>{4, capacity + 1, 6});
    replay(step);
    EXPECT_TRUE(next_copy_fails(out, {"attention", "kv_len[1] = " + std::to_string(capacity + 1)}));
    put(pos, std::vector<int32_t>{3, 4, 5});
    put(len, std::vector<int32_t>{4, 0, 6});
    replay(step);
    EXPECT_TRUE(next_copy_fails(out, {"attention", "kv_len[1] = 0"}));
    put(len, std::vector<int32_t>{4, 5, 6});
    replay(step);
    EXPECT_FALSE(std::isnan(out.to_vector<float>()[0]));
  }
}

// One recorded attention replayed over changing kv_len, with a bad kv_len in the middle: every good replay
// equals eager attention, and a repeated length gives the same bits. (The CUDA backend combines the
// splits in the last block of each head group, found through counters that the replays reuse; over a
// cache of at most 256 positions it runs a one-pass kernel instead: both capacities are tried.)
TEST_P(RecordingTest, AttentionReplaysStayEqualToEagerAcrossBadEntries) {
  for (const int32_t capacity : {300, 200}) {
    SCOPED_TRACE(capacity);
    const int64_t slots = 2, kv_heads = 2, heads = 4, dk = 32, dv = 32, tokens = 2;
    const float scale = 1.f / std::sqrt(static_cast<float>(dk));
    Tensor kc = upload_f32(random_floats(slots * kv_heads * capacity * dk, 60), {slots, kv_heads, capacity, dk});
    Tensor vc = upload_f32(random_floats(slots * kv_heads * capacity * dv, 61), {slots, kv_heads, capacity, dv});
    Tensor q = upload_f32(random_floats(tokens * heads * dk, 62), {tokens, heads, dk});
    Tensor slot = upload_i32({1, 0}, {tokens}), len = upload_i32({1, 1}, {tokens});
    Tensor out = poisoned(MOE_DTYPE_F32, {tokens, heads, dv});
    moe_recorded_step* step = record(
        [&] { check(op().attention(h(), ref(q), ref(kc), ref(vc), ref(slot), ref(len), scale, ref(out)), "attention"); });
    const std::vector<std::vector<int32_t>> lengths = {{1, capacity}, {65, 64},  {5, capacity + 1},
                                                       {130, 7},      {capacity, 1}, {130, 7}};
    std::vector<float> first_130_7;
    for (const auto& lv : lengths) {
      SCOPED_TRACE(::testing::PrintToString(lv));
      put(len, lv);
      replay(step);
      if (lv[1] > capacity) {
        EXPECT_TRUE(next_copy_fails(out, {"attention", "kv_len[1] = " + std::to_string(capacity + 1)}));
        continue;
      }
      Tensor want = Tensor::empty(be(), MOE_DTYPE_F32, {tokens, heads, dv});
      ops::attention(q, kc, vc, upload_i32({1, 0}, {tokens}), upload_i32(lv, {tokens}), scale, want);
      const std::vector<float> got = out.to_vector<float>();
      EXPECT_TRUE(close_to(got, to_double(want.to_vector<float>()), kF32Tolerance));
      if (lv[0] != 130) continue;
      if (first_130_7.empty()) {
        first_130_7 = got;
      } else {
        EXPECT_EQ(got, first_130_7);
      }
    }
  }
}

// Head dims above 256 (MLA over its latent cache has dk 576, dv 512): recorded attention, 16 query heads over
// one kv head, against the double-precision reference, on keys the replays do not change.
TEST_P(RecordingTest, WideHeadAttentionReplaysMatchReference) {
  const int64_t slots = 2, kv_heads = 1, heads = 16, capacity = 100, dk = 288, dv = 272, tokens = 2;
  const float scale = 1.f / std::sqrt(static_cast<float>(dk));
  const std::vector<float> kv = random_floats(slots * kv_heads * capacity * dk, 120),
                           vv = random_floats(slots * kv_heads * capacity * dv, 121);
  Tensor kc = upload_f32(kv, {slots, kv_heads, capacity, dk}), vc = upload_f32(vv, {slots, kv_heads, capacity, dv});
  Tensor q = upload_f32(random_floats(tokens * heads * dk, 122), {tokens, heads, dk});
  Tensor slot = upload_i32({0, 0}, {tokens}), len = upload_i32({1, 1}, {tokens});
  Tensor out = poisoned(MOE_DTYPE_F32, {tokens, heads, dv});
  moe_recorded_step* step = record(
      [&] { check(op().attention(h(), ref(q), ref(kc), ref(vc), ref(slot), ref(len), scale, ref(out)), "attention"); });
  for (const auto& [sv, lv] : {std::pair<std::vector<int32_t>, std::vector<int32_t>>{{1, 0}, {100, 7}},
                               std::pair<std::vector<int32_t>, std::vector<int32_t>>{{0, 0}, {65, 1}}}) {
    const std::vector<float> qv = random_floats(tokens * heads * dk, 123 + lv[1]);
    put(q, qv);
    put(slot, sv);
    put(len, lv);
    replay(step);
    EXPECT_TRUE(close_to(out.to_vector<float>(),
                         reference::attention(qv, tokens, heads, dk, kv, vv, kv_heads, capacity, dv, sv, lv, scale),
                         kF32Tolerance));
  }
}

// moe_permute, expert_mlp and moe_unpermute recorded together, for both weight dtypes and for shapes that
// take the 16-byte and the element-wise weight loads.
TEST_P(RecordingTest, MoeLayerReplaysMatchEager) {
  const int64_t tokens = 3, top_k = 2, experts = 5, rows = tokens * top_k;
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (auto [dim, width] : {std::pair<int64_t, int64_t>{64, 48}, std::pair<int64_t, int64_t>{19, 24}}) {
      SCOPED_TRACE(::testing::Message() << "weights " << wt << " dim " << dim << " width " << width);
      const float ws = 2.f / std::sqrt(static_cast<float>(dim));
      Tensor gate_up = upload_float(rounded_if_bf16(random_floats(experts * 2 * width * dim, 60, -ws, ws), wt), wt,
                                    {experts, 2 * width, dim});
      Tensor down = upload_float(rounded_if_bf16(random_floats(experts * dim * width, 61, -ws, ws), wt), wt,
                                 {experts, dim, width});
      Tensor x = upload_f32(random_floats(tokens * dim, 62), {tokens, dim});
      Tensor ids = upload_i32(std::vector<int32_t>(rows, 0), {tokens, top_k});
      Tensor w = upload_f32(random_floats(rows, 63, 0.f, 1.f), {tokens, top_k});
      Tensor xs = poisoned(MOE_DTYPE_F32, {rows, dim}), off = poisoned(MOE_DTYPE_I64, {experts + 1}),
             src = poisoned(MOE_DTYPE_I32, {rows}), ys = poisoned(MOE_DTYPE_F32, {rows, dim});
      Tensor out = upload_f32(random_floats(tokens * dim, 64), {tokens, dim});
      moe_recorded_step* step = record([&] {
        check(op().moe_permute(h(), ref(x), ref(ids), static_cast<int32_t>(experts), ref(xs), ref(off), ref(src)),
              "moe_permute");
        check(op().expert_mlp(h(), ref(xs), ref(off), ref(gate_up), ref(down), MOE_ACT_SILU, ref(ys)), "expert_mlp");
        check(op().moe_unpermute(h(), ref(ys), ref(src), ref(w), 1, ref(out)), "moe_unpermute");
      });
      // Expert 3 gets nothing in round 0; token 2 sends both copies to expert 4 in round 1.
      const std::vector<std::vector<int32_t>> id_rounds = {{0, 2, 4, 1, 2, 0}, {1, 3, 0, 1, 4, 4}};
      for (size_t round = 0; round < 2; ++round) {
        SCOPED_TRACE(round);
        const auto xv = random_floats(tokens * dim, 70 + round), wv = random_floats(rows, 80 + round, 0.f, 1.f),
                   ov = random_floats(tokens * dim, 90 + round);
        put(x, xv);
        put(ids, id_rounds[round]);
        put(w, wv);
        put(out, ov);
        replay(step);
        Tensor x_e = upload_f32(xv, {tokens, dim}), w_e = upload_f32(wv, {tokens, top_k});
        ops::Permuted p = ops::moe_permute(x_e, upload_i32(id_rounds[round], {tokens, top_k}), experts);
        EXPECT_EQ(off.to_vector<int64_t>(), p.offsets.to_vector<int64_t>());
        EXPECT_EQ(src.to_vector<int32_t>(), p.source.to_vector<int32_t>());
        EXPECT_EQ(xs.to_vector<float>(), p.x_sorted.to_vector<float>());
        Tensor y_e = ops::expert_mlp(p.x_sorted, p.offsets, gate_up, down, MOE_ACT_SILU);
        EXPECT_TRUE(close_to(ys.to_vector<float>(), to_double(y_e.to_vector<float>()), tolerance_for(wt)));
        Tensor out_e = upload_f32(ov, {tokens, dim});
        ops::moe_unpermute(y_e, p.source, w_e, true, out_e);
        EXPECT_TRUE(close_to(out.to_vector<float>(), to_double(out_e.to_vector<float>()), tolerance_for(wt)));
      }
      put(ids, std::vector<int32_t>{0, 1, 2, 5, 3, 4});
      replay(step);
      EXPECT_TRUE(next_copy_fails(out, {"moe_permute", "ids[1, 1] = 5"}));
      put(ids, id_rounds[0]);
      replay(step);
      EXPECT_EQ(off.to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 3, 5, 5, 6}));
    }
  }
}

// expert_mlp and moe_unpermute recorded alone, so that their own checks see bad offsets and sources.
TEST_P(RecordingTest, ExpertMlpAndUnpermuteCheckTheirIndicesOnTheDevice) {
  const int64_t tokens = 2, top_k = 2, experts = 3, rows = 4, dim = 16, width = 8;
  Tensor gate_up = upload_f32(random_floats(experts * 2 * width * dim, 1), {experts, 2 * width, dim});
  Tensor down = upload_f32(random_floats(experts * dim * width, 2), {experts, dim, width});
  Tensor xs = upload_f32(random_floats(rows * dim, 3), {rows, dim});
  std::vector<int64_t> good_off = {0, 1, 1, 4};
  Tensor off = Tensor::from_host(be(), MOE_DTYPE_I64, {experts + 1}, good_off.data());
  Tensor ys = Tensor::zeros(be(), MOE_DTYPE_F32, {rows, dim});
  moe_recorded_step* mlp = record(
      [&] { check(op().expert_mlp(h(), ref(xs), ref(off), ref(gate_up), ref(down), MOE_ACT_GELU_TANH, ref(ys)), "expert_mlp"); });
  replay(mlp);
  EXPECT_TRUE(close_to(ys.to_vector<float>(), to_double(ops::expert_mlp(xs, off, gate_up, down, MOE_ACT_GELU_TANH).to_vector<float>()),
                       kF32Tolerance));
  put(off, std::vector<int64_t>{0, 3, 2, 4});
  replay(mlp);
  EXPECT_TRUE(next_copy_fails(ys, {"expert_mlp", "offsets[2] = 2"}));
  put(off, std::vector<int64_t>{0, 1, 1, 9});
  replay(mlp);
  EXPECT_TRUE(next_copy_fails(ys, {"expert_mlp", "offsets[3] = 9"}));

  Tensor w = upload_f32(random_floats(rows, 4), {tokens, top_k});
  Tensor src = upload_i32({0, 1, 2, 3}, {rows});
  Tensor out = Tensor::zeros(be(), MOE_DTYPE_F32, {tokens, dim});
  moe_recorded_step* un = record([&] { check(op().moe_unpermute(h(), ref(ys), ref(src), ref(w), 0, ref(out)), "moe_unpermute"); });
  for (const std::vector<int32_t>& s : {std::vector<int32_t>{2, 0, 3, 1}, std::vector<int32_t>{3, 2, 1, 0}}) {
    put(src, s);
    replay(un);
    Tensor want = Tensor::empty(be(), MOE_DTYPE_F32, {tokens, dim});
    ops::moe_unpermute(ys, upload_i32(s, {rows}), w, false, want);
    EXPECT_TRUE(close_to(out.to_vector<float>(), to_double(want.to_vector<float>()), kF32Tolerance));
  }
  put(src, std::vector<int32_t>{2, 0, 4, 1});
  replay(un);
  EXPECT_TRUE(next_copy_fails(out, {"moe_unpermute", "source[2] = 4"}));
  put(src, std::vector<int32_t>{2, 0, 2, 1});
  replay(un);
  EXPECT_TRUE(next_copy_fails(out, {"moe_unpermute", "source[", "] = 2"}));
  put(src, std::vector<int32_t>{0, 1, 2, 3});
  replay(un);
  out.to_vector<float>();
}

// Products recorded: f32 rows times bf16 weights with few rows (the decode step's products; the CUDA
// backend has its own kernel for them while recording) and with more rows, other operand types, beta.
TEST_P(RecordingTest, GemmReplaysMatchEager) {
  struct Case {
    int64_t m, n, k;
    moe_dtype b_type;
    float alpha, beta;
  };
  for (const Case& c : {Case{1, 40, 72, MOE_DTYPE_BF16, 1.f, 0.f}, Case{3, 40, 72, MOE_DTYPE_BF16, 0.5f, 1.f},
                        Case{16, 33, 64, MOE_DTYPE_BF16, 1.f, 1.f}, Case{5, 24, 19, MOE_DTYPE_BF16, 1.f, 0.f},
                        Case{40, 48, 64, MOE_DTYPE_BF16, 1.f, 0.f}, Case{2, 24, 32, MOE_DTYPE_F32, 1.f, 0.f}}) {
    SCOPED_TRACE(::testing::Message() << "m " << c.m << " n " << c.n << " k " << c.k << " b " << c.b_type << " beta "
                                      << c.beta);
    Tensor a = upload_f32(random_floats(c.m * c.k, 1), {c.m, c.k});
    Tensor b = upload_float(rounded_if_bf16(random_floats(c.n * c.k, 2), c.b_type), c.b_type, {c.n, c.k});
    const std::vector<float> c0 = random_floats(c.m * c.n, 3);
    Tensor out = upload_f32(c0, {c.m, c.n});
    moe_recorded_step* step = record([&] {
      check(op().gemm(h(), 0, 1, c.m, c.n, c.k, c.alpha, a.data(), MOE_DTYPE_F32, c.k, b.data(), c.b_type, c.k, c.beta,
                      out.data(), MOE_DTYPE_F32, c.n),
            "gemm");
    });
    for (uint32_t round = 0; round < 2; ++round) {
      const std::vector<float> av = random_floats(c.m * c.k, 10 + round);
      put(a, av);
      put(out, c0);
      replay(step);
      Tensor want = upload_f32(c0, {c.m, c.n});
      ops::gemm(upload_f32(av, {c.m, c.k}), b, false, true, want, c.alpha, c.beta);
      EXPECT_TRUE(close_to(out.to_vector<float>(), to_double(want.to_vector<float>()), kF32Tolerance));
    }
  }
}

TEST_P(RecordingTest, HostCopiesAndWaitsAreRefusedWhileRecording) {
  Tensor a = upload_f32({1.f, 2.f}, {2});
  Tensor b = Tensor::zeros(be(), MOE_DTYPE_F32, {2});
  float host[2] = {0.f, 0.f};
  check(op().record_begin(h()), "record_begin");
  recording_ = true;
  const moe_status copied = op().copy_to_host(h(), host, a.data(), sizeof host);
  EXPECT_EQ(copied, MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(op().copy_from_host(h(), b.data(), host, sizeof host), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(op().synchronize(h()), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(op().record_begin(h()), MOE_OK);  // already recording
  check(op().copy(h(), b.data(), a.data(), sizeof host), "copy");  // recorded
  // Whether a refused call discards the recording is the backend's choice (the CUDA backend discards it);
  // a step it keeps is destroyed with the others.
  moe_recorded_step* step = nullptr;
  recording_ = false;
  if (op().record_end(h(), &step) == MOE_OK)
    steps_.push_back(step);
  else
    EXPECT_EQ(step, nullptr);
  // Nothing of the recording ran, and the instance works.
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0.f, 0.f}));
  EXPECT_NE(op().record_end(h(), &step), MOE_OK);  // nothing is being recorded
  // An op called with bad arguments while recording: a backend that checks them then (CUDA) fails the op
  // and record_end discards the recording; one that records the call as it is fails it when the step is
  // replayed, and the next wait reports that.
  Tensor ids = upload_i32({0, 1}, {2});
  Tensor table = upload_f32(random_floats(3 * 4, 5), {3, 4});
  Tensor too_small = Tensor::zeros(be(), MOE_DTYPE_F32, {1, 4});
  check(op().record_begin(h()), "record_begin");
  recording_ = true;
  const moe_status bad_op = op().embedding(h(), ref(ids), ref(table), ref(too_small));
  step = nullptr;
  recording_ = false;
  const moe_status ended = op().record_end(h(), &step);
  if (bad_op != MOE_OK) {
    EXPECT_EQ(ended, MOE_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(step, nullptr);
  } else {
    ASSERT_EQ(ended, MOE_OK);
    steps_.push_back(step);
    replay(step);
    EXPECT_NE(op().synchronize(h()), MOE_OK);
  }
  EXPECT_EQ(op().synchronize(h()), MOE_OK);  // reported once
  // Memory allocated while recording is ordinary memory that outlives the recording; a copy into it runs
  // only when the step is replayed.
  void* block = nullptr;
  moe_recorded_step* s2 = record([&] {
    check(op().alloc(h(), sizeof host, &block), "alloc");
    check(op().copy(h(), block, a.data(), sizeof host), "copy");
    check(op().memset_zero(h(), a.data(), sizeof host), "memset_zero");
  });
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.f, 2.f}));
  replay(s2);
  check(op().copy_to_host(h(), host, block, sizeof host), "copy_to_host");
  EXPECT_EQ(host[0], 1.f);
  EXPECT_EQ(host[1], 2.f);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0.f, 0.f}));
  op().free(h(), block);
}

// Two layers of a MoE transformer decode step (embedding, norms, bf16 projections through cuBLAS, rope,
// kv_store, attention, router, experts), recorded once and replayed for three tokens in a row; each token's output
// is compared with the same ops run eagerly on their own caches.
TEST_P(RecordingTest, DecodeLikeSequenceReplaysMatchEager) {
  const int64_t dim = 64, heads = 4, kv_heads = 2, hd = 16, experts = 4, top_k = 2, width = 32, vocab = 40,
                capacity = 32, layers = 2;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  auto bf16 = [&](int64_t n, uint32_t seed, float s) {
    return round_to_bf16(random_floats(static_cast<size_t>(n), seed, -s, s));
  };
  const float ws = 1.f / std::sqrt(static_cast<float>(dim));
  Tensor embed = upload_bf16(bf16(vocab * dim, 1, 1.f), {vocab, dim});
  Tensor norm_w = upload_f32(random_floats(dim, 2, 0.5f, 1.5f), {dim});
  Tensor wqkv = upload_bf16(bf16((heads + 2 * kv_heads) * hd * dim, 3, ws), {(heads + 2 * kv_heads) * hd, dim});
  Tensor wo = upload_bf16(bf16(dim * heads * hd, 4, ws), {dim, heads * hd});
  Tensor router = upload_bf16(bf16(experts * dim, 5, ws), {experts, dim});
  // f32 experts: the eager and recorded expert paths then agree to f32 rounding, so no near tie of the
  // second layer's router can flip between them.
  Tensor gate_up = upload_f32(random_floats(experts * 2 * width * dim, 6, -ws, ws), {experts, 2 * width, dim});
  Tensor down = upload_f32(random_floats(experts * dim * width, 7, -ws, ws), {experts, dim, width});
  Tensor cos_t = upload_f32(random_floats(capacity * hd / 2, 8), {capacity, hd / 2});
  Tensor sin_t = upload_f32(random_floats(capacity * hd / 2, 9), {capacity, hd / 2});

  struct Run {
    std::vector<Tensor> kc, vc;
  };
  auto caches = [&] {
    Run r;
    for (int64_t l = 0; l < layers; ++l) {
      r.kc.push_back(Tensor::zeros(be(), MOE_DTYPE_F32, {1, kv_heads, capacity, hd}));
      r.vc.push_back(Tensor::zeros(be(), MOE_DTYPE_F32, {1, kv_heads, capacity, hd}));
    }
    return r;
  };
  Run recorded = caches(), eager = caches();
  // The step's fixed input buffers and its activations.
  Tensor ids = upload_i32({0}, {1}), slot = upload_i32({0}, {1}), pos = upload_i32({0}, {1}), len = upload_i32({1}, {1});
  Tensor x = Tensor::zeros(be(), MOE_DTYPE_F32, {1, dim}), hn = Tensor::zeros(be(), MOE_DTYPE_F32, {1, dim});
  Tensor qkv = Tensor::zeros(be(), MOE_DTYPE_F32, {1, (heads + 2 * kv_heads) * hd});
  Tensor q = Tensor::zeros(be(), MOE_DTYPE_F32, {1, heads, hd}), k = Tensor::zeros(be(), MOE_DTYPE_F32, {1, kv_heads, hd}),
         v = Tensor::zeros(be(), MOE_DTYPE_F32, {1, kv_heads, hd}), att = Tensor::zeros(be(), MOE_DTYPE_F32, {1, heads, hd});
  Tensor logits = Tensor::zeros(be(), MOE_DTYPE_F32, {1, experts});
  Tensor rid = Tensor::zeros(be(), MOE_DTYPE_I32, {1, top_k}), rw = Tensor::zeros(be(), MOE_DTYPE_F32, {1, top_k});
  Tensor xs = Tensor::zeros(be(), MOE_DTYPE_F32, {top_k, dim}), off = Tensor::zeros(be(), MOE_DTYPE_I64, {experts + 1}),
         src = Tensor::zeros(be(), MOE_DTYPE_I32, {top_k}), ys = Tensor::zeros(be(), MOE_DTYPE_F32, {top_k, dim});

  // One token through the layers, by the op table, on the given caches; `x` ends as the final hidden state.
  auto step_ops = [&](Run& run) {
    check(op().embedding(h(), ref(ids), ref(embed), ref(x)), "embedding");
    for (int64_t l = 0; l < layers; ++l) {
      check(op().rmsnorm(h(), ref(x), ref(norm_w), 1e-5f, ref(hn)), "rmsnorm");
      check(op().gemm(h(), 0, 1, 1, (heads + 2 * kv_heads) * hd, dim, 1.f, hn.data(), MOE_DTYPE_F32, dim, wqkv.data(),
                      MOE_DTYPE_BF16, dim, 0.f, qkv.data(), MOE_DTYPE_F32, (heads + 2 * kv_heads) * hd),
            "gemm");
      const int64_t qkv_w = (heads + 2 * kv_heads) * hd;
      check(op().copy_2d(h(), static_cast<float*>(q.data()), heads * hd, static_cast<float*>(qkv.data()), qkv_w, 1,
                         heads * hd), "copy_2d");
      check(op().copy_2d(h(), static_cast<float*>(k.data()), kv_heads * hd, static_cast<float*>(qkv.data()) + heads * hd,
                         qkv_w, 1, kv_heads * hd), "copy_2d");
      check(op().copy_2d(h(), static_cast<float*>(v.data()), kv_heads * hd,
                         static_cast<float*>(qkv.data()) + (heads + kv_heads) * hd, qkv_w, 1, kv_heads * hd), "copy_2d");
      check(op().rope(h(), ref(q), ref(pos), ref(cos_t), ref(sin_t), 0, static_cast<int32_t>(hd), MOE_ROPE_NEOX), "rope");
      check(op().rope(h(), ref(k), ref(pos), ref(cos_t), ref(sin_t), 0, static_cast<int32_t>(hd), MOE_ROPE_NEOX), "rope");
      check(op().kv_store(h(), ref(k), ref(v), ref(slot), ref(pos), ref(run.kc[l]), ref(run.vc[l])), "kv_store");
      check(op().attention(h(), ref(q), ref(run.kc[l]), ref(run.vc[l]), ref(slot), ref(len), scale, ref(att)),
            "attention");
      check(op().gemm(h(), 0, 1, 1, dim, heads * hd, 1.f, att.data(), MOE_DTYPE_F32, heads * hd, wo.data(),
                      MOE_DTYPE_BF16, heads * hd, 1.f, x.data(), MOE_DTYPE_F32, dim), "gemm");
      check(op().rmsnorm(h(), ref(x), ref(norm_w), 1e-5f, ref(hn)), "rmsnorm");
      check(op().gemm(h(), 0, 1, 1, experts, dim, 1.f, hn.data(), MOE_DTYPE_F32, dim, router.data(), MOE_DTYPE_BF16,
                      dim, 0.f, logits.data(), MOE_DTYPE_F32, experts), "gemm");
      check(op().route_softmax_topk(h(), ref(logits), static_cast<int32_t>(top_k), 1, ref(rid), ref(rw)),
            "route_softmax_topk");
      check(op().moe_permute(h(), ref(hn), ref(rid), static_cast<int32_t>(experts), ref(xs), ref(off), ref(src)),
            "moe_permute");
      check(op().expert_mlp(h(), ref(xs), ref(off), ref(gate_up), ref(down), MOE_ACT_SILU, ref(ys)), "expert_mlp");
      check(op().moe_unpermute(h(), ref(ys), ref(src), ref(rw), 1, ref(x)), "moe_unpermute");
    }
  };
  moe_recorded_step* step = record([&] { step_ops(recorded); });
  const std::vector<int32_t> tokens = {7, 31, 2};
  for (int32_t t = 0; t < static_cast<int32_t>(tokens.size()); ++t) {
    SCOPED_TRACE(t);
    put(ids, std::vector<int32_t>{tokens[t]});
    put(pos, std::vector<int32_t>{t});
    put(len, std::vector<int32_t>{t + 1});
    replay(step);
    const std::vector<float> got = x.to_vector<float>();
    step_ops(eager);  // the same buffers, run eagerly: x is overwritten with the eager result
    EXPECT_TRUE(close_to(got, to_double(x.to_vector<float>()), kF32Tolerance));
    for (int64_t l = 0; l < layers; ++l)
      EXPECT_TRUE(close_to(recorded.kc[l].to_vector<float>(), to_double(eager.kc[l].to_vector<float>()), kF32Tolerance));
  }
}

}  // namespace
}  // namespace moe::testing
