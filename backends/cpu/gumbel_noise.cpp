// add_gumbel_noise: logits[i] += scale * -log(-log(u_i)) with u_i from Philox4x32-10 (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011) at counter {i, i >> 32, 0, 0} and key
// {seed, seed >> 32}, as moe_plugin.h specifies, so that every backend draws the same noise.
#include <cmath>
#include <string>

#include "backend_ops.h"
#include "errors.h"
#include "parallel.h"
#include "tensor_checks.h"

namespace moe_cpu {
namespace {

// The first output word of Philox4x32 with 10 rounds.
uint32_t philox4x32_10_first_word(uint64_t counter, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t{0xD2511F53u} * c0, p1 = uint64_t{0xCD9E8D57u} * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return c0;
}

}  // namespace

moe_status cpu_add_gumbel_noise(moe_backend* be, moe_tensor* logits, uint64_t seed, uint64_t offset, float scale) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const int64_t n = check_tensor(logits, "logits", MOE_DTYPE_F32, 2);
    float* l = data_of<float>(logits);
    parallel_ranges(backend, n, kMinFloatsPerThread / 8, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const double u = (philox4x32_10_first_word(offset + static_cast<uint64_t>(i), seed) + 0.5) * 0x1p-32;
        l[i] += static_cast<float>(scale * -std::log(-std::log(u)));
      }
    });
  });
}

}  // namespace moe_cpu
