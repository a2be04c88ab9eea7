// A backend plugin built for an older plugin ABI must still compute what a current one does: the core calls
// the fused ops of ABI 1.4 and 1.5 only where the plugin's table has them with their current arguments, and
// otherwise runs their parts. Each backend under test is loaded a second time through a copy of its
// descriptor that claims ABI 1.3 (table cut before route_and_permute) or 1.4 (cut before rmsnorm_linear; its
// route_and_permute had other arguments then, so it must not be called); ops::route_and_permute,
// ops::rmsnorm_linear, ops::expert_mlp_unpermute and ops::rope_kv_store on that instance must give the current
// instance's results bit for bit.
#include <cstddef>
#include <memory>

#include "backend_fixture.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

class OlderPluginTest : public BackendTest {
 protected:
  // The backend under test as a plugin of ABI 1.`minor` whose table ends at `table_size` bytes.
  std::unique_ptr<Backend> as_older(uint32_t minor, size_t table_size) {
    table_ = be().ops();
    table_.struct_size = static_cast<uint32_t>(table_size);
    descriptor_ = moe_plugin_descriptor{sizeof(moe_plugin_descriptor),
                                        static_cast<uint32_t>((MOE_PLUGIN_ABI_MAJOR << 16) | minor),
                                        MOE_PLUGIN_KIND_BACKEND,
                                        be().name().c_str(),
                                        "older-abi test",
                                        nullptr,
                                        &table_};
    return another_instance(&descriptor_);
  }

  // x, norm weight, router, q/k/v-like weights and experts on `on`, the same values on every instance.
  struct Inputs {
    Tensor x, norm, router, w, gate_up, down;
  };
  static Inputs inputs(Backend& on) {
    const int64_t tokens = 3, dim = 64, experts = 8, n = 96;
    Inputs in;
    in.x = Tensor::from_host(on, MOE_DTYPE_F32, {tokens, dim}, random_floats(tokens * dim, 11, -2.f, 2.f).data());
    in.norm = Tensor::from_host(on, MOE_DTYPE_F32, {dim}, random_floats(dim, 12, 0.5f, 1.5f).data());
    in.router = Tensor::from_host(on, MOE_DTYPE_F32, {experts, dim}, random_floats(experts * dim, 13).data());
    in.w = Tensor::from_host(on, MOE_DTYPE_F32, {n, dim}, random_floats(n * dim, 14).data());
    const int64_t width = 32;
    in.gate_up = Tensor::from_host(on, MOE_DTYPE_F32, {experts, 2 * width, dim},
                                   random_floats(experts * 2 * width * dim, 15, -0.2f, 0.2f).data());
    in.down = Tensor::from_host(on, MOE_DTYPE_F32, {experts, dim, width},
                                random_floats(experts * dim * width, 16, -0.2f, 0.2f).data());
    return in;
  }

  void expect_same_results(Backend& older) {
    Inputs now = inputs(be()), then = inputs(older);
    const ops::RouterSpec spec{false, nullptr, 1, 1, 2, true, 1.f};
    const ops::Dispatch want = ops::route_and_permute(now.x, {&now.norm, 1e-5f}, now.router, spec);
    const ops::Dispatch got = ops::route_and_permute(then.x, {&then.norm, 1e-5f}, then.router, spec);
    expect_same_dispatch(got, want);
    EXPECT_TRUE(same_bits(ops::rmsnorm_linear(then.x, then.norm, 1e-5f, then.w),
                          ops::rmsnorm_linear(now.x, now.norm, 1e-5f, now.w), "y"));
    // The experts on the dispatched rows, their outputs added to x.
    Tensor out_now = ops::clone(now.x), out_then = ops::clone(then.x);
    ops::expert_mlp_unpermute(want.permuted.x_sorted, want.permuted.offsets, now.gate_up, now.down, MOE_ACT_SILU,
                              want.permuted.source, want.routing.weights, true, out_now);
    ops::expert_mlp_unpermute(got.permuted.x_sorted, got.permuted.offsets, then.gate_up, then.down, MOE_ACT_SILU,
                              got.permuted.source, got.routing.weights, true, out_then);
    EXPECT_TRUE(same_bits(out_then, out_now, "out"));
    // The first token's heads (q from the norm's product, k and v from x) rotated and stored.
    expect_same_rope_kv_store(older);
  }

  void expect_same_rope_kv_store(Backend& older) {
    const int64_t heads = 4, kv_heads = 2, hd = 16, positions = 8, slots = 2, capacity = 8;
    struct Step {
      Tensor q, k, v, pos, slot, cos, sin, k_cache, v_cache;
    };
    auto step = [&](Backend& on) {
      auto f32 = [&](Shape shape, uint32_t seed) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return Tensor::from_host(on, MOE_DTYPE_F32, shape, random_floats(static_cast<size_t>(n), seed).data());
      };
      const std::vector<int32_t> pos{5}, slot{1};
      return Step{f32({1, heads, hd}, 21), f32({1, kv_heads, hd}, 22), f32({1, kv_heads, hd}, 23),
                  Tensor::from_host(on, MOE_DTYPE_I32, {1}, pos.data()),
                  Tensor::from_host(on, MOE_DTYPE_I32, {1}, slot.data()), f32({positions, hd / 2}, 24),
                  f32({positions, hd / 2}, 25), f32({slots, kv_heads, capacity, hd}, 26),
                  f32({slots, kv_heads, capacity, hd}, 27)};
    };
    Step now = step(be()), then = step(older);
    for (Step* s : {&now, &then})
      ops::rope_kv_store(s->q, s->k, s->v, s->pos, ops::RopeSpec{&s->cos, &s->sin, 0, static_cast<int>(hd), 0},
                         s->slot, s->k_cache, s->v_cache);
    EXPECT_TRUE(same_bits(then.q, now.q, "q"));
    EXPECT_TRUE(same_bits(then.k_cache, now.k_cache, "k_cache"));
    EXPECT_TRUE(same_bits(then.v_cache, now.v_cache, "v_cache"));
  }

  moe_backend_ops table_{};
  moe_plugin_descriptor descriptor_{};
};
MOE_INSTANTIATE_FOR_BACKENDS(OlderPluginTest);

TEST_P(OlderPluginTest, Abi13PluginRunsTheFusedOpsAsTheirParts) {
  std::unique_ptr<Backend> older = as_older(3, offsetof(moe_backend_ops, route_and_permute));
  EXPECT_FALSE(older->has_route_and_permute());
  EXPECT_FALSE(older->has_rmsnorm_linear());
  EXPECT_FALSE(older->has_expert_mlp_unpermute());
  EXPECT_FALSE(older->has_rope_kv_store());
  expect_same_results(*older);
}

TEST_P(OlderPluginTest, Abi14RouteAndPermuteIsNotCalledWithTheNewArguments) {
  std::unique_ptr<Backend> older = as_older(4, offsetof(moe_backend_ops, rmsnorm_linear));
  EXPECT_FALSE(older->has_route_and_permute());  // its 1.4 entry took other arguments
  EXPECT_FALSE(older->has_rmsnorm_linear());
  EXPECT_FALSE(older->has_expert_mlp_unpermute());
  EXPECT_FALSE(older->has_rope_kv_store());
  expect_same_results(*older);
}

TEST_P(OlderPluginTest, CurrentPluginHasThem) {
  EXPECT_TRUE(be().has_route_and_permute());
  EXPECT_TRUE(be().has_rmsnorm_linear());
  EXPECT_TRUE(be().has_expert_mlp_unpermute());
  EXPECT_TRUE(be().has_rope_kv_store());
}

}  // namespace
}  // namespace moe::testing
