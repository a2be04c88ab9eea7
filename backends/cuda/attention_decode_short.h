// Recorded attention over caches of at most kShortMaxCapacity positions in one pass per (token, kv head,
// head group), without the split kernel's partials (attention_decode_short.cu); attention_decode.cu tries
// it first while a step is recorded.
#pragma once

#include "backend_instance.h"
#include "device_index_checks.h"
#include "kv_cache.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

constexpr int64_t kShortMaxCapacity = 256;

// Launches the one-pass kernel and returns true when the shapes suit it (capacity <= kShortMaxCapacity, head
// dims multiples of 4 up to 128, 16-byte aligned q and caches); returns false, launching nothing, otherwise.
// Shapes are checked by the caller; slot and kv_len are checked on the device, bad ones reported to `errors`.
bool attention_decode_short(moe_backend& be, const moe_tensor* q, const moe_tensor* k_cache,
                            const moe_tensor* v_cache, const KvCacheShape& c, const moe_tensor* slot,
                            const moe_tensor* kv_len, float scale, moe_tensor* out, IndexError* errors);

}  // namespace moe_cuda
