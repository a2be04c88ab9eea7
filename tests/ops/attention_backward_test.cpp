// attention_backward over shapes the training test does not reach: query tiles of many rows and many key
// tiles (long sequences), GQA groups that do not divide a tile, cross attention (every token of a slot
// reads the same keys, not a causal prefix), odd lengths and head dims that are not multiples of 16, the
// same slot in two separate runs of tokens, and head dims large enough for smaller tiles; the forward's
// output is checked too. Every backend at
// its default math against the double-precision reference (1e-4); then the CUDA backend created with
// MOE_CUDA_F32_MATH=bf16, whose attention forward and backward and whose expert products of the A B^T layout (run as
// separate bf16 products, grouped_gemm.cpp) take bf16 tensor cores, at the bf16 tolerance (1e-2); the
// attention backward also bit-identical from run to run.
#include <memory>
#include <string>

#include "backend_fixture.h"
#include "cuda_bf16_math.h"
#include "reference_ops.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

struct AttentionCase {
  const char* name;
  int64_t heads, kv_heads, dk, dv, slots, capacity;
  std::vector<int32_t> slot, kv_len;
};

// Appends `count` tokens of slot s: causal from position `start` (kv_len = position + 1), or all
// reading `fixed` keys when fixed > 0 (cross attention).
void add_tokens(AttentionCase& c, int32_t s, int32_t count, int32_t start, int32_t fixed = 0) {
  for (int32_t i = 0; i < count; ++i) {
    c.slot.push_back(s);
    c.kv_len.push_back(fixed > 0 ? fixed : start + i + 1);
  }
}

std::vector<AttentionCase> cases() {
  std::vector<AttentionCase> v;
  AttentionCase a{"long causal, GQA 3 of 6 heads, dk 40, dv 24", 6, 2, 40, 24, 3, 160, {}, {}};
  add_tokens(a, 2, 150, 0);      // several query and key tiles, the last ones partial
  add_tokens(a, 0, 37, 0, 101);  // cross attention: 37 tokens over the same 101 keys
  add_tokens(a, 2, 9, 150);      // slot 2 again, after another slot: the same keys from two runs
  v.push_back(a);
  AttentionCase b{"MHA, odd dims dk 17 dv 33", 5, 5, 17, 33, 2, 90, {}, {}};
  add_tokens(b, 1, 83, 0);
  add_tokens(b, 0, 11, 40);  // a causal chunk that starts deep in its cache
  v.push_back(b);
  AttentionCase c{"one kv head for 40 heads (tiles of 32 rows split the group), dk 200 dv 256", 40, 1, 200, 256, 1, 40, {}, {}};
  add_tokens(c, 0, 13, 20);
  v.push_back(c);
  // The shapes of the tensor-core forward's two instances (head dims up to 64 and up to 128).
  AttentionCase d{"MHA dk 64 dv 64, 200 causal tokens (several 64-row items and 64-key blocks)", 2, 2, 64, 64, 2, 230, {}, {}};
  add_tokens(d, 1, 200, 0);
  add_tokens(d, 0, 30, 0, 130);
  v.push_back(d);
  AttentionCase e{"GQA 4 of 8 heads, dk 96 dv 128, causal from position 50", 8, 2, 96, 128, 1, 140, {}, {}};
  add_tokens(e, 0, 70, 50);
  v.push_back(e);
  return v;
}

struct AttentionResult {
  std::vector<float> out, dq, dk, dv;
};

AttentionResult run_backward(Backend& be, const AttentionCase& c, const std::vector<float>& q,
                             const std::vector<float>& kc, const std::vector<float>& vc, const std::vector<float>& dout,
                             const std::vector<float>& dk0, const std::vector<float>& dv0) {
  const int64_t tokens = static_cast<int64_t>(c.slot.size());
  Tensor tq = Tensor::from_host(be, MOE_DTYPE_F32, {tokens, c.heads, c.dk}, q.data());
  Tensor tkc = Tensor::from_host(be, MOE_DTYPE_F32, {c.slots, c.kv_heads, c.capacity, c.dk}, kc.data());
  Tensor tvc = Tensor::from_host(be, MOE_DTYPE_F32, {c.slots, c.kv_heads, c.capacity, c.dv}, vc.data());
  Tensor ts = Tensor::from_host(be, MOE_DTYPE_I32, {tokens}, c.slot.data());
  Tensor tl = Tensor::from_host(be, MOE_DTYPE_I32, {tokens}, c.kv_len.data());
  Tensor out = Tensor::empty(be, MOE_DTYPE_F32, {tokens, c.heads, c.dv});
  ops::attention(tq, tkc, tvc, ts, tl, 0.125f, out);
  Tensor dq = Tensor::empty(be, MOE_DTYPE_F32, {tokens, c.heads, c.dk});
  std::vector<unsigned char> poison(dq.nbytes(), 0xff);
  dq.copy_from_host(poison.data(), poison.size());
  Tensor dkc = Tensor::from_host(be, MOE_DTYPE_F32, {c.slots, c.kv_heads, c.capacity, c.dk}, dk0.data());
  Tensor dvc = Tensor::from_host(be, MOE_DTYPE_F32, {c.slots, c.kv_heads, c.capacity, c.dv}, dv0.data());
  Tensor tdout = Tensor::from_host(be, MOE_DTYPE_F32, {tokens, c.heads, c.dv}, dout.data());
  ops::attention_backward(tq, tkc, tvc, ts, tl, 0.125f, out, tdout, dq, dkc, dvc);
  return {out.to_vector<float>(), dq.to_vector<float>(), dkc.to_vector<float>(), dvc.to_vector<float>()};
}

// Checks every case on `be` at `tolerance`; with `twice`, also that a second run gives the same bits.
void check_cases(Backend& be, double tolerance, bool twice) {
  uint32_t seed = 900;
  for (const AttentionCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const int64_t tokens = static_cast<int64_t>(c.slot.size());
    auto q = random_floats(tokens * c.heads * c.dk, seed++);
    auto kc = random_floats(c.slots * c.kv_heads * c.capacity * c.dk, seed++);
    auto vc = random_floats(c.slots * c.kv_heads * c.capacity * c.dv, seed++);
    auto dout = random_floats(tokens * c.heads * c.dv, seed++);
    auto dk0 = random_floats(kc.size(), seed++), dv0 = random_floats(vc.size(), seed++);
    // Gradients of size comparable to the starting values, so that the check sees them.
    for (auto& x : q) x *= 4.f;
    const AttentionResult got = run_backward(be, c, q, kc, vc, dout, dk0, dv0);
    auto want = reference::attention_backward(q, tokens, c.heads, c.dk, kc, vc, c.kv_heads, c.capacity, c.dv, c.slot,
                                              c.kv_len, 0.125, dout, std::vector<double>(kc.size(), 0.0),
                                              std::vector<double>(vc.size(), 0.0));
    // The cache gradients accumulate: compare what was added.
    std::vector<float> added_k(got.dk.size()), added_v(got.dv.size());
    for (size_t i = 0; i < added_k.size(); ++i) added_k[i] = got.dk[i] - dk0[i];
    for (size_t i = 0; i < added_v.size(); ++i) added_v[i] = got.dv[i] - dv0[i];
    EXPECT_TRUE(close_to(got.out, reference::attention(q, tokens, c.heads, c.dk, kc, vc, c.kv_heads, c.capacity, c.dv,
                                                       c.slot, c.kv_len, 0.125),
                         tolerance))
        << "out";
    EXPECT_TRUE(close_to(got.dq, want.dq, tolerance)) << "dq";
    EXPECT_TRUE(close_to(added_k, want.dk_cache, tolerance)) << "dk_cache";
    EXPECT_TRUE(close_to(added_v, want.dv_cache, tolerance)) << "dv_cache";
    if (twice) {
      const AttentionResult again = run_backward(be, c, q, kc, vc, dout, dk0, dv0);
      EXPECT_TRUE(again.out == got.out && again.dq == got.dq && again.dk == got.dk && again.dv == got.dv)
          << "a second run differs";
    }
  }
}

class AttentionBackwardTest : public BackendTest {};

TEST_P(AttentionBackwardTest, LongGqaCrossAndOddShapes) { check_cases(be(), kF32Tolerance, false); }

MOE_INSTANTIATE_FOR_BACKENDS(AttentionBackwardTest);

// Parameterized like the other op tests (so that the CUDA test filter, Backends/*/cuda, selects it), but
// only the CUDA backend has this mode: the others skip.
class CudaBf16MathTest : public BackendTest {
 protected:
  std::unique_ptr<Backend> bf16_backend() {
    if (GetParam() != "cuda") return nullptr;
    std::string skip;
    auto be = cuda_with_bf16_math(skip);
    if (!be) ADD_FAILURE() << skip;  // the fixture found the cuda backend usable
    return be;
  }
};

TEST_P(CudaBf16MathTest, AttentionForwardAndBackwardOnTensorCores) {
  if (GetParam() != "cuda") GTEST_SKIP() << "MOE_CUDA_F32_MATH is the CUDA backend's";
  auto be = bf16_backend();
  if (!be) return;
  check_cases(*be, kBf16Tolerance, true);
}

TEST_P(CudaBf16MathTest, ExpertMlpAndBackwardOnTensorCores) {
  if (GetParam() != "cuda") GTEST_SKIP() << "MOE_CUDA_F32_MATH is the CUDA backend's";
  auto be = bf16_backend();
  if (!be) return;
  const std::vector<int64_t> offsets = {0, 0, 1, 7, 28, 93};
  const int64_t experts = 5, rows = 93, dim = 40, width = 56;
  auto x = random_floats(rows * dim, 931), dy = random_floats(rows * dim, 932);
  auto gu = random_floats(experts * 2 * width * dim, 933, -0.3f, 0.3f);
  auto dn = random_floats(experts * dim * width, 934, -0.3f, 0.3f);
  auto dgu0 = random_floats(gu.size(), 935, -0.01f, 0.01f), ddn0 = random_floats(dn.size(), 936, -0.01f, 0.01f);
  Tensor tx = Tensor::from_host(*be, MOE_DTYPE_F32, {rows, dim}, x.data());
  Tensor tdy = Tensor::from_host(*be, MOE_DTYPE_F32, {rows, dim}, dy.data());
  Tensor toff = Tensor::from_host(*be, MOE_DTYPE_I64, {experts + 1}, offsets.data());
  Tensor tgu = Tensor::from_host(*be, MOE_DTYPE_F32, {experts, 2 * width, dim}, gu.data());
  Tensor tdn = Tensor::from_host(*be, MOE_DTYPE_F32, {experts, dim, width}, dn.data());
  Tensor dx = Tensor::empty(*be, MOE_DTYPE_F32, {rows, dim});
  Tensor dgu = Tensor::from_host(*be, MOE_DTYPE_F32, {experts, 2 * width, dim}, dgu0.data());
  Tensor ddn = Tensor::from_host(*be, MOE_DTYPE_F32, {experts, dim, width}, ddn0.data());
  // The forward pass: under this mode both its products run as separate bf16 products.
  EXPECT_TRUE(close_to(ops::expert_mlp(tx, toff, tgu, tdn, MOE_ACT_SILU).to_vector<float>(),
                       reference::expert_mlp(x, dim, offsets, gu, dn, width, MOE_ACT_SILU), kBf16Tolerance))
      << "expert_mlp";
  ops::expert_mlp_backward(tx, toff, tgu, tdn, MOE_ACT_SILU, tdy, &dx, &dgu, &ddn);
  auto want = reference::expert_mlp_backward(x, dim, offsets, gu, dn, width, MOE_ACT_SILU, dy, to_double(dgu0),
                                             to_double(ddn0));
  EXPECT_TRUE(close_to(dx.to_vector<float>(), want.dx, kBf16Tolerance));
  EXPECT_TRUE(close_to(dgu.to_vector<float>(), want.dgate_up, kBf16Tolerance));
  EXPECT_TRUE(close_to(ddn.to_vector<float>(), want.ddown, kBf16Tolerance));
}

MOE_INSTANTIATE_FOR_BACKENDS(CudaBf16MathTest);

}  // namespace
}  // namespace moe::testing
