// kv_store and attention: causal prefill of ragged sequences in arbitrary slots, decode against
// partly filled caches, GQA, dk != dv (MLA), item splits, and bad indices.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend_fixture.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class AttentionTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(AttentionTest);

struct Sequence {
  int32_t slot;
  int32_t first_position;  // tokens at first_position, first_position + 1, ... (causal)
  int32_t tokens;
};

struct AttentionCase {
  const char* name;
  int64_t heads, kv_heads, dk, dv, slots, capacity;
  std::vector<Sequence> sequences;
  std::vector<int32_t> extra_kv_len;  // tokens in slot 0 with these kv_len, in this order, appended
};

const AttentionCase kCases[] = {
    {"causal prefill of two ragged sequences", 4, 4, 32, 32, 2, 80, {{1, 0, 37}, {0, 0, 70}}, {}},
    {"GQA, continuation and decode", 8, 2, 40, 24, 3, 96, {{0, 50, 20}, {2, 4, 1}}, {}},
    {"MLA head sizes dk=192 dv=128", 4, 1, 192, 128, 2, 24, {{1, 0, 9}, {0, 3, 9}, {1, 20, 1}}, {}},
    // DeepSeek-V3's latent cache (kv_cache.h): every head over one [latent 512 | rope 64] key, latent values.
    {"MLA latent cache dk=576 dv=512", 16, 1, 576, 512, 2, 40, {{0, 0, 7}, {1, 30, 1}, {0, 7, 1}}, {}},
    {"decode against long caches", 8, 8, 64, 64, 3, 320, {{2, 299, 1}, {0, 128, 1}, {1, 0, 1}}, {}},
    // Two query rows per kv head and head sizes that are not whole vectors (the CPU's direct scores).
    {"decode, head pairs of odd size", 4, 2, 40, 24, 2, 96, {{0, 70, 1}, {1, 3, 1}}, {}},
    {"kv_len in any order", 2, 1, 16, 16, 1, 64, {}, {5, 17, 3, 17, 64, 1}},
    {"more rows than one work item", 8, 1, 16, 8, 1, 48, {{0, 8, 40}}, {}},
    {"a group larger than one work item", 272, 1, 8, 8, 1, 10, {{0, 4, 2}}, {}},
    {"tiny heads", 3, 3, 1, 3, 1, 5, {{0, 0, 5}}, {}},
};

TEST_P(AttentionTest, MatchesReference) {
  uint32_t seed = 300;
  for (const AttentionCase& c : kCases) {
    SCOPED_TRACE(c.name);
    std::vector<int32_t> slot, kv_len;
    for (const Sequence& s : c.sequences)
      for (int32_t i = 0; i < s.tokens; ++i) {
        slot.push_back(s.slot);
        kv_len.push_back(s.first_position + i + 1);
      }
    for (int32_t len : c.extra_kv_len) {
      slot.push_back(0);
      kv_len.push_back(len);
    }
    const int64_t tokens = static_cast<int64_t>(slot.size());
    auto q = random_floats(tokens * c.heads * c.dk, seed++);
    auto k_cache = random_floats(c.slots * c.kv_heads * c.capacity * c.dk, seed++);
    auto v_cache = random_floats(c.slots * c.kv_heads * c.capacity * c.dv, seed++);
    // Cache rows no token of the slot reaches may hold anything, even NaN: they must not be read.
    std::vector<int32_t> reach(c.slots, 0);
    for (int64_t t = 0; t < tokens; ++t) reach[slot[t]] = std::max(reach[slot[t]], kv_len[t]);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t s = 0; s < c.slots; ++s)
      for (int64_t h = 0; h < c.kv_heads; ++h)
        for (int64_t p = reach[s]; p < c.capacity; ++p) {
          int64_t row = (s * c.kv_heads + h) * c.capacity + p;
          std::fill_n(k_cache.begin() + row * c.dk, c.dk, nan);
          std::fill_n(v_cache.begin() + row * c.dv, c.dv, nan);
        }
    const float scale = 1.f / std::sqrt(static_cast<float>(c.dk));
    Tensor out = poisoned(MOE_DTYPE_F32, {tokens, c.heads, c.dv});
    ops::attention(upload_f32(q, {tokens, c.heads, c.dk}), upload_f32(k_cache, {c.slots, c.kv_heads, c.capacity, c.dk}),
                   upload_f32(v_cache, {c.slots, c.kv_heads, c.capacity, c.dv}), upload_i32(slot, {tokens}),
                   upload_i32(kv_len, {tokens}), scale, out);
    EXPECT_TRUE(close_to(download_f32(out),
                         reference::attention(q, tokens, c.heads, c.dk, k_cache, v_cache, c.kv_heads, c.capacity, c.dv,
                                              slot, kv_len, scale),
                         kF32Tolerance));
  }
}

TEST_P(AttentionTest, RejectsIndicesOutsideTheCache) {
  Tensor q = upload_f32(random_floats(2 * 2 * 8, 1), {2, 2, 8});
  Tensor kc = upload_f32(random_floats(2 * 1 * 16 * 8, 2), {2, 1, 16, 8});
  Tensor out = poisoned(MOE_DTYPE_F32, {2, 2, 8});
  EXPECT_TRUE(fails_with(
      [&] {
        ops::attention(q, kc, kc, upload_i32({0, 1}, {2}), upload_i32({16, 17}, {2}), 1.f, out);
      },
      MOE_ERR_INVALID_ARGUMENT, {"kv_len[1]", "17"}));
  EXPECT_TRUE(fails_with([&] { ops::attention(q, kc, kc, upload_i32({2, 0}, {2}), upload_i32({1, 1}, {2}), 1.f, out); },
                         MOE_ERR_INVALID_ARGUMENT, {"slot[0]", "2"}));
}

TEST_P(AttentionTest, KvStoreWritesOnlyItsRows) {
  const int64_t tokens = 5, slots = 3, kv_heads = 2, capacity = 11, dk = 6, dv = 5;
  const std::vector<int32_t> slot = {2, 0, 2, 1, 0}, position = {0, 10, 7, 3, 4};
  auto k = random_floats(tokens * kv_heads * dk, 401), v = random_floats(tokens * kv_heads * dv, 402);
  auto k_cache = random_floats(slots * kv_heads * capacity * dk, 403);
  auto v_cache = random_floats(slots * kv_heads * capacity * dv, 404);
  Tensor tkc = upload_f32(k_cache, {slots, kv_heads, capacity, dk});
  Tensor tvc = upload_f32(v_cache, {slots, kv_heads, capacity, dv});
  ops::kv_store(upload_f32(k, {tokens, kv_heads, dk}), upload_f32(v, {tokens, kv_heads, dv}),
                upload_i32(slot, {tokens}), upload_i32(position, {tokens}), tkc, tvc);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < kv_heads; ++h) {
      int64_t row = (slot[t] * kv_heads + h) * capacity + position[t];
      std::copy_n(k.begin() + (t * kv_heads + h) * dk, dk, k_cache.begin() + row * dk);
      std::copy_n(v.begin() + (t * kv_heads + h) * dv, dv, v_cache.begin() + row * dv);
    }
  EXPECT_EQ(download_f32(tkc), k_cache);
  EXPECT_EQ(download_f32(tvc), v_cache);
}

TEST_P(AttentionTest, KvStoreRejectsPositionOutsideTheCache) {
  Tensor k = upload_f32(random_floats(2 * 1 * 4, 1), {2, 1, 4});
  Tensor cache = upload_f32(random_floats(1 * 1 * 8 * 4, 2), {1, 1, 8, 4});
  Tensor cache2 = upload_f32(random_floats(1 * 1 * 8 * 4, 3), {1, 1, 8, 4});
  EXPECT_TRUE(fails_with([&] { ops::kv_store(k, k, upload_i32({0, 0}, {2}), upload_i32({7, 8}, {2}), cache, cache2); },
                         MOE_ERR_INVALID_ARGUMENT, {"position[1]", "8"}));
}

}  // namespace
}  // namespace moe::testing
