// attention: splits the packed query tokens into work items for kernels/attention_kernels.cpp.
//
// An item is a run of consecutive tokens that read the same cache slot, for one kv head, with all
// query heads of that kv head's group: every row of an item reads the same K and V, so each key
// block is loaded and transposed once per item. Items hold at most kMaxItemRows rows (token x head);
// a causal prefill of a few hundred tokens is one item per kv head, and decode is one per kv head.
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
namespace {

// Enough rows to reuse each key block many times; few enough that O and Q stay in L2.
constexpr int64_t kMaxItemRows = 256;

}  // namespace

moe_status cpu_attention(moe_backend* be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                         const moe_tensor* slot, const moe_tensor* kv_len, float scale, moe_tensor* out) {
  return guarded([&] {
    moe_backend& backend = backend_of(be);
    const KvCacheShape c = check_kv_caches(k_cache, v_cache);
    check_tensor(q, "q", MOE_DTYPE_F32, 3);
    check_tensor(out, "out", MOE_DTYPE_F32, 3);
    const int64_t tokens = q->shape[0], heads = q->shape[1];
    if (q->shape[2] != c.dk || out->shape[0] != tokens || out->shape[1] != heads || out->shape[2] != c.dv)
      invalid("q " + shape_string(*q) + " must be [tokens, heads, dk] and out " + shape_string(*out) +
              " [tokens, heads, dv] of the caches " + shape_string(*k_cache) + ", " + shape_string(*v_cache));
    if (c.kv_heads < 1 || heads % c.kv_heads)
      invalid("heads=" + std::to_string(heads) + " must be a multiple of the caches' kv_heads=" +
              std::to_string(c.kv_heads));
    if (!std::isfinite(scale)) invalid("scale=" + std::to_string(scale) + " is not finite");
    const int32_t* slots = check_token_indices(slot, "slot", tokens, 0, c.slots - 1);
    // A token with no key to attend to has no softmax; kv_len = position + 1 is at least 1.
    const int32_t* lengths = check_token_indices(kv_len, "kv_len", tokens, 1, c.capacity);
    if (tokens == 0 || heads == 0 || c.dv == 0) return;

    const int64_t group = heads / c.kv_heads;
    const int64_t tokens_per_item = std::max<int64_t>(1, kMaxItemRows / group);
    const int64_t heads_per_item = std::min(group, kMaxItemRows);
    const float* qd = data_of<const float>(q);
    const float* kd = data_of<const float>(k_cache);
    const float* vd = data_of<const float>(v_cache);
    float* od = data_of<float>(out);

    std::vector<AttentionItem> items;
    for (int64_t run = 0; run < tokens;) {
      int64_t run_end = run + 1;
      while (run_end < tokens && slots[run_end] == slots[run]) ++run_end;
      for (int64_t t0 = run; t0 < run_end; t0 += tokens_per_item) {
        const int64_t n_tokens = std::min(tokens_per_item, run_end - t0);
        for (int64_t kvh = 0; kvh < c.kv_heads; ++kvh) {
          const int64_t cache_row = (slots[t0] * c.kv_heads + kvh) * c.capacity;
          for (int64_t g0 = 0; g0 < group; g0 += heads_per_item) {
            const int64_t head = kvh * group + g0;
            items.push_back(AttentionItem{qd + (t0 * heads + head) * c.dk, heads * c.dk, kd + cache_row * c.dk,
                                          vd + cache_row * c.dv, lengths + t0, n_tokens,
                                          std::min(heads_per_item, group - g0), c.dk, c.dv, scale,
                                          od + (t0 * heads + head) * c.dv, heads * c.dv});
          }
        }
      }
      run = run_end;
    }

    int64_t most_rows = 0;
    for (const auto& it : items) most_rows = std::max(most_rows, it.tokens * it.heads);
    const size_t per_worker = (backend.kernels.attention_scratch_floats(most_rows, c.dk, c.dv) + 15) / 16 * 16;
    float* scratch = thread_scratch_as<float>(ScratchSlot::kAttention, per_worker * backend.threads);
    parallel_items(backend, static_cast<int64_t>(items.size()), [&](int worker, int64_t i) {
      backend.kernels.attention_item(items[i], scratch + worker * per_worker);
    });
  });
}

}  // namespace moe_cpu
