// attention_backward: for each query row (token t, head h) with probabilities p over keys j < kv_len[t]
// (recomputed from q and the cache) and D = dout . out:
//   ds_j = p_j * (dout . v_j - D);  dq = scale * sum_j ds_j k_j;  dk_j += scale * ds_j q;  dv_j += p_j dout
// (kernels/attention_backward_kernels.cpp). The cache gradients of one (slot, kv head) are written by
// the rows of that slot and kv head only, so that pair is the unit of work: no two threads ever add
// into the same cache row.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "errors.h"
#include "kv_cache.h"
#include "parallel.h"
#include "tensor_checks.h"
#include "thread_scratch.h"

namespace moe_cpu {

moe_status cpu_attention_backward(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache,
                                  const moe_tensor* v_cache, const moe_tensor* slot, const moe_tensor* kv_len,
                                  float scale, const moe_tensor* out, const moe_tensor* dout, moe_tensor* dq,
                                  moe_tensor* dk_cache, moe_tensor* dv_cache) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const KvCacheShape c = check_kv_caches(k_cache, v_cache);
    const KvCacheShape g = check_kv_caches(dk_cache, dv_cache);
    if (g.slots != c.slots || g.kv_heads != c.kv_heads || g.capacity != c.capacity || g.dk != c.dk || g.dv != c.dv)
      invalid("dk_cache " + shape_string(*dk_cache) + " and dv_cache " + shape_string(*dv_cache) +
              " must have the caches' shapes " + shape_string(*k_cache) + ", " + shape_string(*v_cache));
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    const int64_t tokens = q->shape[0], heads = q->shape[1];
    for (auto [t, name, width] : {std::tuple{q, "q", c.dk}, std::tuple{static_cast<const moe_tensor*>(dq), "dq", c.dk},
                                  std::tuple{out, "out", c.dv}, std::tuple{dout, "dout", c.dv}}) {
      check_tensor(t, name, MOE_DTYPE_F32, 3);
      if (t->shape[0] != tokens || t->shape[1] != heads || t->shape[2] != width)
        invalid(std::string(name) + " " + shape_string(*t) + " must be [tokens = " + std::to_string(tokens) +
                ", heads = " + std::to_string(heads) + ", " + std::to_string(width) + "]");
    }
    if (c.kv_heads < 1 || heads % c.kv_heads)
      invalid("heads=" + std::to_string(heads) + " must be a multiple of the caches' kv_heads=" +
              std::to_string(c.kv_heads));
    if (!std::isfinite(scale)) invalid("scale=" + std::to_string(scale) + " is not finite");
    const int32_t* slots = check_token_indices(slot, "slot", tokens, 0, c.slots - 1);
    const int32_t* lengths = check_token_indices(kv_len, "kv_len", tokens, 1, c.capacity);
    if (tokens == 0 || heads == 0) return;

    const int64_t group = heads / c.kv_heads;
    std::vector<std::vector<int64_t>> tokens_of_slot(static_cast<size_t>(c.slots));
    for (int64_t t = 0; t < tokens; ++t) tokens_of_slot[slots[t]].push_back(t);
    std::vector<int64_t> used_slots;
    for (int64_t s = 0; s < c.slots; ++s)
      if (!tokens_of_slot[s].empty()) used_slots.push_back(s);

    const float* qd = data_of<const float>(q);
    const float* kd = data_of<const float>(k_cache);
    const float* vd = data_of<const float>(v_cache);
    const float* od = data_of<const float>(out);
    const float* dod = data_of<const float>(dout);
    float* dqd = data_of<float>(dq);
    float* dkd = data_of<float>(dk_cache);
    float* dvd = data_of<float>(dv_cache);
    int64_t longest = 0;
    for (int64_t t = 0; t < tokens; ++t) longest = std::max<int64_t>(longest, lengths[t]);
    const size_t per_worker = (backend.kernels.attention_backward_scratch_floats(longest, c.dk, c.dv) + 15) / 16 * 16;
    float* scratch = thread_scratch_as<float>(ScratchSlot::kAttention, per_worker * backend.threads);

    parallel_items(backend, static_cast<int64_t>(used_slots.size()) * c.kv_heads, [&](int worker, int64_t item) {
      const int64_t s = used_slots[item / c.kv_heads], kvh = item % c.kv_heads;
      const int64_t cache_row = (s * c.kv_heads + kvh) * c.capacity;
      const AttentionBackwardItem it{qd,
                                     od,
                                     dod,
                                     dqd,
                                     heads,
                                     tokens_of_slot[s].data(),
                                     static_cast<int64_t>(tokens_of_slot[s].size()),
                                     kvh * group,
                                     group,
                                     lengths,
                                     kd + cache_row * c.dk,
                                     vd + cache_row * c.dv,
                                     dkd + cache_row * c.dk,
                                     dvd + cache_row * c.dv,
                                     c.dk,
                                     c.dv,
                                     scale};
      backend.kernels.attention_backward_item(it, scratch + worker * per_worker);
    });
  });
}

}  // namespace moe_cpu
