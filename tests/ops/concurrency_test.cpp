// Several application threads calling ops on one backend instance at once get exactly what one
// thread gets (the op table requires every op to be safe to call concurrently).
#include <thread>

#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class ConcurrencyTest : public BackendTest {};
MOE_INSTANTIATE_FOR_BACKENDS(ConcurrencyTest);

TEST_P(ConcurrencyTest, ThreadsGetTheSingleThreadResults) {
  struct Gemm {
    int64_t m, n, k;
    moe_dtype b_type;
  };
  // A small-M product, matmuls of both weight types, shapes no other test created primitives for.
  const Gemm gemms[] = {{1, 300, 128, MOE_DTYPE_BF16}, {37, 96, 80, MOE_DTYPE_F32}, {64, 130, 72, MOE_DTYPE_BF16}};
  std::vector<Tensor> as, bs;
  uint32_t seed = 500;
  for (const Gemm& g : gemms) {
    as.push_back(upload_f32(random_floats(g.m * g.k, seed++), {g.m, g.k}));
    bs.push_back(upload_float(rounded_if_bf16(random_floats(g.n * g.k, seed++), g.b_type), g.b_type, {g.n, g.k}));
  }
  const int64_t tokens = 48, heads = 4, kv_heads = 2, dk = 32, dv = 32, capacity = 64;
  std::vector<int32_t> slot(tokens, 0), kv_len(tokens);
  for (int64_t t = 0; t < tokens; ++t) kv_len[t] = static_cast<int32_t>(t + 17);
  Tensor q = upload_f32(random_floats(tokens * heads * dk, seed++), {tokens, heads, dk});
  Tensor kc = upload_f32(random_floats(kv_heads * capacity * dk, seed++), {1, kv_heads, capacity, dk});
  Tensor vc = upload_f32(random_floats(kv_heads * capacity * dv, seed++), {1, kv_heads, capacity, dv});
  Tensor tslot = upload_i32(slot, {tokens}), tlen = upload_i32(kv_len, {tokens});

  // Everything one thread computes, as host vectors.
  auto run_all = [&]() {
    std::vector<std::vector<float>> results;
    for (size_t i = 0; i < as.size(); ++i) {
      Tensor c = Tensor::empty(be(), MOE_DTYPE_F32, {as[i].dim(0), bs[i].dim(0)});
      ops::gemm(as[i], bs[i], false, true, c);
      results.push_back(c.to_vector<float>());
    }
    Tensor out = Tensor::empty(be(), MOE_DTYPE_F32, {tokens, heads, dv});
    ops::attention(q, kc, vc, tslot, tlen, 0.125f, out);
    results.push_back(out.to_vector<float>());
    return results;
  };

  const auto expected = run_all();
  constexpr int kThreads = 4, kRounds = 8;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int round = 0; round < kRounds; ++round)
          if (run_all() != expected) failures[t] = "round " + std::to_string(round) + " differs";
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
}

}  // namespace
}  // namespace moe::testing
