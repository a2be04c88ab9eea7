// rope_kv_store (plugin ABI 1.5): a layer's new queries and keys rotated and its keys and values stored, in
// one op, must give bit for bit what rope (over q, then k) and kv_store give called one after the other
// (both tested against the double-precision reference in their own suites): q, k and both caches. Eager calls
// against the eager ops, recorded ones against the ops recorded (the CUDA backend's one-kernel path is
// switched by MOE_CUDA_FUSED_DECODE, so the recorded rounds run with it on and off), both layouts, partial
// rotary dims, grouped heads, value widths other than the keys', several tokens in their own slots, q and k
// adjacent as in a one-token step's stacked row, and argument errors. Backends without the entry skip.
#include <utility>

#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

struct RopeStoreCase {
  const char* name;
  int64_t tokens, heads, kv_heads, dk, dv;
  int rot_offset, rot_dim, layout;
  bool stacked;  // q, k and v views of one [heads + 2 kv_heads, dk] row (one token, dv = dk)
};

const RopeStoreCase kCases[] = {
    {"decode, seed-1.2B-like stacked row", 1, 16, 16, 64, 64, 0, 64, MOE_ROPE_NEOX, true},
    {"grouped heads, interleaved", 1, 8, 2, 32, 32, 0, 32, MOE_ROPE_INTERLEAVED, false},
    {"partial rotary dims", 2, 4, 2, 32, 32, 8, 16, MOE_ROPE_NEOX, false},
    {"values narrower than keys", 3, 4, 4, 32, 16, 0, 32, MOE_ROPE_NEOX, false},
    {"no tokens", 0, 4, 2, 16, 16, 0, 16, MOE_ROPE_NEOX, false},
};

constexpr int64_t kSlots = 4, kCapacity = 12, kMaxPositions = 16;

class RopeKvStoreTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_rope_kv_store())
      GTEST_SKIP() << "backend '" << be().name() << "' has no rope_kv_store (plugin ABI 1.5)";
  }

  // A step's rows, its index tensors and a pair of caches with seeded contents (so that entries the call must
  // not touch are compared too).
  struct Step {
    Tensor row, q, k, v;  // row: the stacked buffer where the case has one
    Tensor positions, slot, cos, sin, k_cache, v_cache;
  };
  Step step(const RopeStoreCase& c, uint32_t& seed) {
    Step s;
    if (c.stacked) {
      s.row = upload_f32(random_floats(static_cast<size_t>((c.heads + 2 * c.kv_heads) * c.dk), seed++),
                         {c.heads + 2 * c.kv_heads, c.dk});
      s.q = s.row.slice(0, c.heads).view({1, c.heads, c.dk});
      s.k = s.row.slice(c.heads, c.heads + c.kv_heads).view({1, c.kv_heads, c.dk});
      s.v = s.row.slice(c.heads + c.kv_heads, c.heads + 2 * c.kv_heads).view({1, c.kv_heads, c.dv});
    } else {
      s.q = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.heads * c.dk), seed++),
                       {c.tokens, c.heads, c.dk});
      s.k = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.kv_heads * c.dk), seed++),
                       {c.tokens, c.kv_heads, c.dk});
      s.v = upload_f32(random_floats(static_cast<size_t>(c.tokens * c.kv_heads * c.dv), seed++),
                       {c.tokens, c.kv_heads, c.dv});
    }
    std::vector<int32_t> positions, slots;
    for (int64_t t = 0; t < c.tokens; ++t) {
      positions.push_back(static_cast<int32_t>((3 + 4 * t + seed) % kCapacity));
      slots.push_back(static_cast<int32_t>(t % kSlots));
    }
    s.positions = upload_i32(positions, {c.tokens});
    s.slot = upload_i32(slots, {c.tokens});
    const int64_t half = c.rot_dim / 2;
    s.cos = upload_f32(random_floats(static_cast<size_t>(kMaxPositions * half), seed++), {kMaxPositions, half});
    s.sin = upload_f32(random_floats(static_cast<size_t>(kMaxPositions * half), seed++), {kMaxPositions, half});
    s.k_cache = upload_f32(random_floats(static_cast<size_t>(kSlots * c.kv_heads * kCapacity * c.dk), seed++),
                           {kSlots, c.kv_heads, kCapacity, c.dk});
    s.v_cache = upload_f32(random_floats(static_cast<size_t>(kSlots * c.kv_heads * kCapacity * c.dv), seed++),
                           {kSlots, c.kv_heads, kCapacity, c.dv});
    return s;
  }

  // Two steps with the same contents, for the op and for its parts.
  std::pair<Step, Step> twins(const RopeStoreCase& c, uint32_t seed) {
    uint32_t first = seed, second = seed;
    Step a = step(c, first);
    return {a, step(c, second)};
  }

  static ops::RopeSpec spec_of(const RopeStoreCase& c, const Step& s) {
    return ops::RopeSpec{&s.cos, &s.sin, c.rot_offset, c.rot_dim, c.layout};
  }

  // A step's tensors as the op table takes them.
  struct Refs {
    moe_tensor q, k, v, positions, cos, sin, slot, k_cache, v_cache;
  };
  static Refs refs(const Step& s) {
    return Refs{s.q.ref(),   s.k.ref(),    s.v.ref(),       s.positions.ref(), s.cos.ref(),
                s.sin.ref(), s.slot.ref(), s.k_cache.ref(), s.v_cache.ref()};
  }
  moe_status call_raw(const RopeStoreCase& c, Step& s) {
    Refs r = refs(s);
    return be().ops().rope_kv_store(be().handle(), &r.q, &r.k, &r.v, &r.positions, &r.cos, &r.sin, c.rot_offset,
                                    c.rot_dim, c.layout, &r.slot, &r.k_cache, &r.v_cache);
  }
  moe_status separately_raw(const RopeStoreCase& c, Step& s) {
    Refs r = refs(s);
    const int32_t off = c.rot_offset, dim = c.rot_dim, layout = c.layout;
    moe_status st = be().ops().rope(be().handle(), &r.q, &r.positions, &r.cos, &r.sin, off, dim, layout);
    if (st == MOE_OK) st = be().ops().rope(be().handle(), &r.k, &r.positions, &r.cos, &r.sin, off, dim, layout);
    if (st == MOE_OK)
      st = be().ops().kv_store(be().handle(), &r.k, &r.v, &r.slot, &r.positions, &r.k_cache, &r.v_cache);
    return st;
  }

  static void expect_same(const Step& got, const Step& want) {
    EXPECT_TRUE(same_bits(got.q, want.q, "q"));
    EXPECT_TRUE(same_bits(got.k, want.k, "k"));
    EXPECT_TRUE(same_bits(got.v, want.v, "v"));
    EXPECT_TRUE(same_bits(got.k_cache, want.k_cache, "k_cache"));
    EXPECT_TRUE(same_bits(got.v_cache, want.v_cache, "v_cache"));
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(RopeKvStoreTest);

TEST_P(RopeKvStoreTest, EagerCallMatchesRopeAndKvStore) {
  for (const RopeStoreCase& c : kCases) {
    SCOPED_TRACE(c.name);
    std::pair<Step, Step> steps = twins(c, 1400);
    Step &got = steps.first, &want = steps.second;
    ops::rope_kv_store(got.q, got.k, got.v, got.positions, spec_of(c, got), got.slot, got.k_cache, got.v_cache);
    be().check(separately_raw(c, want), "rope and kv_store");
    expect_same(got, want);
  }
}

// Recorded, then replayed on new rows and positions (a decode step's next token): each replay must match a
// recording of the ops replayed on the same inputs.
TEST_P(RopeKvStoreTest, RecordedCallMatchesTheOpsRecorded) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  with_fused_decode_off_and_on([&](const char*) {
    for (const RopeStoreCase& c : kCases) {
      SCOPED_TRACE(c.name);
      std::pair<Step, Step> steps = twins(c, 1500);
      Step &got = steps.first, &want = steps.second;
      moe_recorded_step* one = record([&] { return call_raw(c, got); }, "rope_kv_store");
      moe_recorded_step* ops = record([&] { return separately_raw(c, want); }, "rope and kv_store");
      for (int round = 0; round < 2; ++round) {
        SCOPED_TRACE(::testing::Message() << "replay " << round);
        uint32_t next = 1600 + static_cast<uint32_t>(round);
        for (Step* s : {&got, &want}) {
          uint32_t draw = next;
          const Step fresh = step(c, draw);  // new rows and positions, the same for both
          for (auto [dst, src] : {std::pair{&s->q, &fresh.q}, std::pair{&s->k, &fresh.k}, std::pair{&s->v, &fresh.v},
                                  std::pair{&s->positions, &fresh.positions}}) {
            const std::vector<unsigned char> bytes = src->to_vector<unsigned char>();
            if (!bytes.empty()) dst->copy_from_host(bytes.data(), bytes.size());
          }
        }
        replay_both(one, ops);
        expect_same(got, want);
      }
      be().ops().destroy_step(be().handle(), one);
      be().ops().destroy_step(be().handle(), ops);
    }
  });
}

TEST_P(RopeKvStoreTest, BadArgumentsNameWhatIsWrong) {
  const RopeStoreCase c = kCases[2];
  uint32_t seed = 1700;
  Step s = step(c, seed);
  EXPECT_EQ(call_raw(c, s), MOE_OK);  // the well-formed call the broken ones alter
  auto raw = [&](Step broken, int32_t rot_dim = 16, int32_t layout = MOE_ROPE_NEOX) {
    RopeStoreCase with = c;
    with.rot_dim = rot_dim;
    with.layout = layout;
    be().check(call_raw(with, broken), "rope_kv_store");
  };
  Step overlapping = s;
  overlapping.k = s.q.slice(0, 1).view({2, 2, 32});
  EXPECT_TRUE(fails_with([&] { raw(overlapping); }, MOE_ERR_INVALID_ARGUMENT, {"q and k must not overlap"}));
  Step short_positions = s;
  short_positions.positions = upload_i32({1}, {1});
  EXPECT_TRUE(fails_with([&] { raw(short_positions); }, MOE_ERR_INVALID_ARGUMENT, {"positions [1]"}));
  EXPECT_TRUE(fails_with([&] { raw(s, 16, 7); }, MOE_ERR_INVALID_ARGUMENT, {"layout 7"}));
  EXPECT_TRUE(fails_with([&] { raw(s, 30); }, MOE_ERR_INVALID_ARGUMENT, {"rotary dims"}));
  Step wrong_cache = s;
  wrong_cache.v_cache = upload_f32(random_floats(kSlots * 2 * 5 * 32, 3), {kSlots, 2, 5, 32});
  EXPECT_TRUE(fails_with([&] { raw(wrong_cache); }, MOE_ERR_INVALID_ARGUMENT, {"v_cache [4, 2, 5, 32]"}));
  Step bf16_q = s;
  bf16_q.q = upload_bf16(round_to_bf16(random_floats(2 * 4 * 32, 4)), {2, 4, 32});
  EXPECT_TRUE(fails_with([&] { raw(bf16_q); }, MOE_ERR_UNSUPPORTED, {"q", "bf16"}));
  // The core's wrapper refuses mismatched shapes before the backend sees it.
  Tensor narrow_k = upload_f32(random_floats(2 * 2 * 16, 5), {2, 2, 16});
  EXPECT_TRUE(fails_with(
      [&] { ops::rope_kv_store(s.q, narrow_k, s.v, s.positions, spec_of(c, s), s.slot, s.k_cache, s.v_cache); },
      MOE_ERR_INTERNAL, {"rope_kv_store", "k [2, 2, 16]"}));
}

}  // namespace
}  // namespace moe::testing
