// How the attention kernels split their work. An item is a run of consecutive query tokens that read the
// same cache slot, for one kv head, with the query heads of that kv head's group: every row (token x
// head) of an item reads the same keys and values, so each key block is loaded into shared memory once
// per item. Items hold at most kItemRows rows; a group larger than that is split over items.
//
// The plan is made on the host from the slot and kv_len entries (read there for their checks anyway).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend_instance.h"
#include "kv_cache.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

constexpr int kItemRows = 16;  // 4 warps of 4 rows
constexpr int kKeyBlock = 32;  // one key per lane
constexpr int kMaxHeadDim = 256;

struct AttentionItem {
  int32_t first_token, tokens;  // rows are (token, head) for tokens [first_token, first_token + tokens)
  int32_t first_head, heads;    // and heads [first_head, first_head + heads)
  int32_t slot, kv_head;
  int32_t max_len;              // the longest kv_len of its tokens: keys [0, max_len) are read
};

struct AttentionPlan {
  std::vector<AttentionItem> items;
};

// Checks q [tokens, heads, dk] against the caches and scale (what needs no index values), with head dims
// up to max_head_dim (the kernel's limit; `kernel` names it in the refusal).
void check_attention_shapes(const moe_tensor* q, const KvCacheShape& c, float scale,
                            int64_t max_head_dim = kMaxHeadDim, const char* kernel = "this CUDA attention kernel");

// Checks q [tokens, heads, dk] against the caches, scale, slot and kv_len (read to the host), and plans
// items of at most rows_per_item rows (the forward's kItemRows; the backward's query tiles take more).
AttentionPlan plan_attention(moe_backend& be, const moe_tensor* q, const KvCacheShape& c, const moe_tensor* slot,
                             const moe_tensor* kv_len, float scale, int64_t rows_per_item = kItemRows,
                             const char* kernel = "this CUDA attention kernel");

}  // namespace moe_cuda
