#include "attention_plan.h"

#include <algorithm>
#include <cmath>

#include "index_checks.h"
#include "tensor_checks.h"

namespace moe_cuda {

void check_attention_shapes(const moe_tensor* q, const KvCacheShape& c, float scale, int64_t max_head_dim,
                            const char* kernel) {
  check_tensor(q, "q", MOE_DTYPE_F32, 3);
  const int64_t tokens = q->shape[0], heads = q->shape[1];
  if (q->shape[2] != c.dk)
    invalid("q " + shape_string(*q) + " must be [tokens, heads, dk] with the caches' dk = " + std::to_string(c.dk));
  if (c.kv_heads < 1 || heads % c.kv_heads)
    invalid("heads=" + std::to_string(heads) + " must be a multiple of the caches' kv_heads=" +
            std::to_string(c.kv_heads));
  if (!std::isfinite(scale)) invalid("scale=" + std::to_string(scale) + " is not finite");
  if (c.dk > max_head_dim || c.dv > max_head_dim)
    fail(MOE_ERR_UNSUPPORTED, "head dims dk=" + std::to_string(c.dk) + ", dv=" + std::to_string(c.dv) +
                                  ": " + kernel + " takes at most " + std::to_string(max_head_dim));
  if (tokens > INT32_MAX || heads > INT32_MAX || c.capacity > INT32_MAX)
    fail(MOE_ERR_UNSUPPORTED, "attention over more than 2^31 - 1 tokens, heads or cache positions");
}

AttentionPlan plan_attention(moe_backend& be, const moe_tensor* q, const KvCacheShape& c, const moe_tensor* slot,
                             const moe_tensor* kv_len, float scale, int64_t rows_per_item, const char* kernel) {
  check_attention_shapes(q, c, scale, kMaxHeadDim, kernel);
  const int64_t tokens = q->shape[0], heads = q->shape[1];
  const std::vector<int32_t> slots = token_indices(be, slot, "slot", tokens, 0, c.slots - 1);
  // A token with no key to attend to has no softmax; kv_len = position + 1 is at least 1.
  const std::vector<int32_t> lengths = token_indices(be, kv_len, "kv_len", tokens, 1, c.capacity);

  AttentionPlan plan;
  if (tokens == 0 || heads == 0 || c.dv == 0) return plan;
  const int64_t group = heads / c.kv_heads;
  const int64_t heads_per_item = std::min<int64_t>(group, rows_per_item);
  const int64_t tokens_per_item = std::max<int64_t>(1, rows_per_item / group);
  for (int64_t run = 0; run < tokens;) {
    int64_t run_end = run + 1;
    while (run_end < tokens && slots[run_end] == slots[run]) ++run_end;
    for (int64_t t0 = run; t0 < run_end; t0 += tokens_per_item) {
      const int64_t n = std::min(tokens_per_item, run_end - t0);
      const int32_t max_len = *std::max_element(lengths.begin() + t0, lengths.begin() + t0 + n);
      for (int64_t kvh = 0; kvh < c.kv_heads; ++kvh)
        for (int64_t g0 = 0; g0 < group; g0 += heads_per_item)
          plan.items.push_back(AttentionItem{static_cast<int32_t>(t0), static_cast<int32_t>(n),
                                             static_cast<int32_t>(kvh * group + g0),
                                             static_cast<int32_t>(std::min(heads_per_item, group - g0)), slots[t0],
                                             static_cast<int32_t>(kvh), max_len});
    }
    run = run_end;
  }
  return plan;
}

}  // namespace moe_cuda
