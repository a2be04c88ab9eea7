// rmsnorm, rope, gated_act, add, embedding, copy_2d and the memory ops.
#include <cmath>
#include <cstring>

#include "backend_fixture.h"
#include "plugins/host_api.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class ElementwiseTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(ElementwiseTest);

TEST_P(ElementwiseTest, RmsnormWithF32AndBf16Weights) {
  for (moe_dtype wt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    for (int64_t width : {1, 37, 512}) {
      SCOPED_TRACE(::testing::Message() << "weight " << wt << " width " << width);
      auto x = random_floats(5 * width, 11, -3.f, 3.f);
      auto w = rounded_if_bf16(random_floats(width, 12, 0.5f, 1.5f), wt);
      Tensor tx = upload_f32(x, {5, width});
      Tensor tw = upload_float(w, wt, {width});
      Tensor ty = poisoned(MOE_DTYPE_F32, {5, width});
      ops::rmsnorm(tx, tw, 1e-5f, ty);
      EXPECT_TRUE(close_to(download_f32(ty), reference::rmsnorm(x, w, 1e-5), kF32Tolerance));
    }
  }
}

TEST_P(ElementwiseTest, RmsnormInPlace) {
  auto x = random_floats(3 * 64, 13);
  auto w = random_floats(64, 14);
  Tensor tx = upload_f32(x, {3, 64});
  ops::rmsnorm(tx, upload_f32(w, {64}), 1e-6f, tx);
  EXPECT_TRUE(close_to(download_f32(tx), reference::rmsnorm(x, w, 1e-6), kF32Tolerance));
}

// Rows whose squares overflow f32 (|x| ~ 1e20..1e30, as weights that blew up in training give) still
// normalise to finite values: the mean of squares must be summed in a wider type, or the row turns
// into zeros or NaN and hides the divergence from the loss. Rows of tiny values must not underflow to
// the eps floor either.
TEST_P(ElementwiseTest, RmsnormOfHugeAndTinyRows) {
  const int64_t width = 300;
  std::vector<float> x = random_floats(4 * width, 15, -1.f, 1.f);
  const float row_scale[4] = {1e20f, 3e30f, 1e-20f, 1.f};
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t j = 0; j < width; ++j) x[r * width + j] *= row_scale[r];
  auto w = random_floats(width, 16, 0.5f, 1.5f);
  Tensor tx = upload_f32(x, {4, width});
  Tensor ty = poisoned(MOE_DTYPE_F32, {4, width});
  ops::rmsnorm(tx, upload_f32(w, {width}), 1e-30f, ty);
  std::vector<float> got = download_f32(ty);
  for (float v : got) ASSERT_TRUE(std::isfinite(v)) << "a row normalised to a non-finite value";
  EXPECT_TRUE(close_to(got, reference::rmsnorm(x, w, 1e-30), kF32Tolerance));
}

TEST_P(ElementwiseTest, RopeBothLayoutsWithRotaryOffset) {
  const int64_t tokens = 5, heads = 3, head_dim = 20, max_positions = 50;
  for (int layout : {MOE_ROPE_NEOX, MOE_ROPE_INTERLEAVED}) {
    for (auto [offset, rot_dim] : {std::pair{0, 20}, std::pair{4, 12}, std::pair{18, 2}}) {
      SCOPED_TRACE(::testing::Message() << "layout " << layout << " offset " << offset << " rot_dim " << rot_dim);
      auto x = random_floats(tokens * heads * head_dim, 21);
      std::vector<int32_t> positions = {0, 7, 49, 3, 3};
      std::vector<float> cos_t(max_positions * rot_dim / 2), sin_t(max_positions * rot_dim / 2);
      for (int64_t p = 0; p < max_positions; ++p)
        for (int64_t i = 0; i < rot_dim / 2; ++i) {
          double angle = p * std::pow(10000.0, -2.0 * i / rot_dim);
          cos_t[p * rot_dim / 2 + i] = static_cast<float>(std::cos(angle));
          sin_t[p * rot_dim / 2 + i] = static_cast<float>(std::sin(angle));
        }
      Tensor tx = upload_f32(x, {tokens, heads, head_dim});
      ops::rope(tx, upload_i32(positions, {tokens}), upload_f32(cos_t, {max_positions, rot_dim / 2}),
                upload_f32(sin_t, {max_positions, rot_dim / 2}), offset, rot_dim, layout);
      std::vector<double> want = to_double(x);
      reference::rope(want, tokens, heads, head_dim, positions, cos_t, sin_t, offset, rot_dim, layout);
      EXPECT_TRUE(close_to(download_f32(tx), want, kF32Tolerance));
    }
  }
}

TEST_P(ElementwiseTest, RopeRejectsPositionOutsideTheTables) {
  Tensor x = upload_f32(random_floats(2 * 1 * 8, 1), {2, 1, 8});
  Tensor tables = upload_f32(random_floats(10 * 4, 2), {10, 4});
  EXPECT_TRUE(fails_with([&] { ops::rope(x, upload_i32({3, 10}, {2}), tables, tables, 0, 8, MOE_ROPE_NEOX); },
                         MOE_ERR_INVALID_ARGUMENT, {"positions[1]", "10"}));
}

TEST_P(ElementwiseTest, GatedActivations) {
  for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
    for (int64_t width : {1, 37, 1024}) {
      SCOPED_TRACE(::testing::Message() << "activation " << act << " width " << width);
      auto x = random_floats(3 * 2 * width, 31, -6.f, 6.f);
      poison_next_allocations({3 * width * sizeof(float)});
      Tensor y = ops::gated_act(upload_f32(x, {3, 2 * width}), act);
      EXPECT_TRUE(close_to(download_f32(y), reference::gated_act(x, 3, width, act), kF32Tolerance));
    }
  }
}

// Large |gate| saturates to gate or 0; exp(-gate) overflows f32 if an implementation does not guard it.
TEST_P(ElementwiseTest, GatedActivationsSaturate) {
  const std::vector<float> gates = {-200.f, -90.f, -30.f, 30.f, 90.f, 200.f, 0.5f, -0.5f, 0.f};
  const int64_t width = static_cast<int64_t>(gates.size());
  std::vector<float> x = gates;
  x.resize(2 * width, 1.f);  // up = 1
  for (int act : {MOE_ACT_SILU, MOE_ACT_GELU_TANH}) {
    SCOPED_TRACE(::testing::Message() << "activation " << act);
    Tensor y = ops::gated_act(upload_f32(x, {1, 2 * width}), act);
    EXPECT_TRUE(close_to(download_f32(y), reference::gated_act(x, 1, width, act), kF32Tolerance));
  }
}

TEST_P(ElementwiseTest, GatedActRejectsUnknownActivation) {
  Tensor x = upload_f32(random_floats(2 * 8, 1), {2, 8});
  EXPECT_TRUE(fails_with([&] { ops::gated_act(x, 7); }, MOE_ERR_INVALID_ARGUMENT, {"activation"}));
}

TEST_P(ElementwiseTest, AddAndAliasedAdd) {
  auto a = random_floats(100003, 41), b = random_floats(100003, 42);
  std::vector<double> want(a.size());
  for (size_t i = 0; i < a.size(); ++i) want[i] = static_cast<double>(a[i]) + b[i];
  Tensor ta = upload_f32(a, {100003}), tb = upload_f32(b, {100003});
  Tensor ty = poisoned(MOE_DTYPE_F32, {100003});
  ops::add(ta, tb, ty);
  EXPECT_TRUE(close_to(download_f32(ty), want, kF32Tolerance));
  ops::add(ta, tb, ta);  // y aliases a
  EXPECT_TRUE(close_to(download_f32(ta), want, kF32Tolerance));
}

TEST_P(ElementwiseTest, EmbeddingF32AndBf16Tables) {
  for (moe_dtype tt : {MOE_DTYPE_F32, MOE_DTYPE_BF16}) {
    SCOPED_TRACE(::testing::Message() << "table " << tt);
    auto table = rounded_if_bf16(random_floats(50 * 37, 51), tt);
    std::vector<int32_t> ids = {0, 49, 3, 3, 17, 48, 1};
    Tensor tids = upload_i32(ids, {7});
    Tensor ttable = upload_float(table, tt, {50, 37});
    poison_next_allocations({7 * 37 * sizeof(float)});
    Tensor out = ops::embedding(tids, ttable);
    EXPECT_EQ(out.shape(), (Shape{7, 37}));
    // A gather copies: exact.
    EXPECT_TRUE(close_to(download_f32(out), reference::embedding(ids, table, 37), 0.0));
  }
}

TEST_P(ElementwiseTest, EmbeddingRejectsIdOutsideTheVocabulary) {
  Tensor table = upload_f32(random_floats(50 * 8, 1), {50, 8});
  EXPECT_TRUE(fails_with([&] { ops::embedding(upload_i32({1, 2, 50, 3}, {4}), table); }, MOE_ERR_INVALID_ARGUMENT,
                         {"ids[2]", "50"}));
  EXPECT_TRUE(fails_with([&] { ops::embedding(upload_i32({-4}, {1}), table); }, MOE_ERR_INVALID_ARGUMENT,
                         {"ids[0]", "-4"}));
}

TEST_P(ElementwiseTest, CopyColumnsLeavesOtherColumnsAlone) {
  auto dst = random_floats(5 * 20, 61), src = random_floats(5 * 13, 62);
  Tensor tdst = upload_f32(dst, {5, 20});
  ops::copy_columns(tdst, 9, upload_f32(src, {5, 13}), 3, 7);
  auto got = download_f32(tdst);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t c = 0; c < 20; ++c) {
      float want = (c >= 9 && c < 16) ? src[r * 13 + c - 9 + 3] : dst[r * 20 + c];
      ASSERT_EQ(got[r * 20 + c], want) << "row " << r << " column " << c;
    }
}

TEST_P(ElementwiseTest, MemoryOps) {
  const moe_backend_ops& ops = be().ops();
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{5} << 20}) {
    SCOPED_TRACE(::testing::Message() << bytes << " bytes");
    void* p = nullptr;
    void* q = nullptr;
    ASSERT_EQ(ops.alloc(be().handle(), bytes, &p), MOE_OK);
    ASSERT_EQ(ops.alloc(be().handle(), bytes, &q), MOE_OK);
    ASSERT_NE(p, nullptr);
    std::vector<unsigned char> host(bytes), back(bytes, 0);
    for (size_t i = 0; i < bytes; ++i) host[i] = static_cast<unsigned char>(i * 7 + 1);
    ASSERT_EQ(ops.copy_from_host(be().handle(), p, host.data(), bytes), MOE_OK);
    ASSERT_EQ(ops.copy(be().handle(), q, p, bytes), MOE_OK);
    ASSERT_EQ(ops.synchronize(be().handle()), MOE_OK);
    ASSERT_EQ(ops.copy_to_host(be().handle(), back.data(), q, bytes), MOE_OK);
    EXPECT_EQ(back, host);
    ASSERT_EQ(ops.memset_zero(be().handle(), q, bytes), MOE_OK);
    ASSERT_EQ(ops.copy_to_host(be().handle(), back.data(), q, bytes), MOE_OK);
    EXPECT_EQ(back, std::vector<unsigned char>(bytes, 0));
    ops.free(be().handle(), p);
    ops.free(be().handle(), q);
  }
  void* zero = nullptr;
  ASSERT_EQ(ops.alloc(be().handle(), 0, &zero), MOE_OK);  // a zero-byte tensor still gets a block
  ops.free(be().handle(), zero);
  EXPECT_EQ(ops.copy(be().handle(), nullptr, &zero, 8), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("dst"), std::string::npos);
}

TEST_P(ElementwiseTest, InstancesFromOptions) {
  const moe_backend_ops& ops = be().ops();
  moe_backend_options o{};
  o.struct_size = sizeof o;
  o.num_threads = -1;
  moe_backend* instance = nullptr;
  EXPECT_EQ(ops.create(&o, &instance), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(take_plugin_error().find("num_threads"), std::string::npos);
  o.num_threads = 1;
  ASSERT_EQ(ops.create(&o, &instance), MOE_OK);
  ASSERT_NE(instance, nullptr);
  EXPECT_NE(std::string(ops.device_description(instance)), "");
  ops.destroy(instance);
  // An options struct from an older host (only struct_size) gets the defaults.
  moe_backend_options old{};
  old.struct_size = sizeof(uint32_t);
  ASSERT_EQ(ops.create(&old, &instance), MOE_OK);
  ops.destroy(instance);
}

TEST_P(ElementwiseTest, PoisonedAllocationsAreWhatTheNextOutputGets) {
  poison_next_allocations({4096 * sizeof(float)});
  Tensor t = Tensor::empty(be(), MOE_DTYPE_F32, {4096});
  for (float v : download_f32(t)) ASSERT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace moe::testing
