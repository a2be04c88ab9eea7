// attention while a step is recorded: flash decoding with the key range split over blocks, for the few
// query tokens of a decode step. Launch geometry comes from shapes only (the grid covers the cache's
// whole capacity; blocks past a token's kv_len exit at once), and slot and kv_len are read and checked on
// the device (device_index_checks.h). It also serves head dims above the flash kernel's kMaxHeadDim (MLA
// over its latent cache: dk 576, dv 512) outside recording, after the host checked the indices.
#pragma once

#include "backend_instance.h"
#include "kv_cache.h"
#include "moe/moe_plugin.h"

namespace moe_cuda {

constexpr int kMaxDecodeHeadDim = 576;

// q, out and the caches as the attention op takes them (shapes already checked, head dims up to
// kMaxDecodeHeadDim); slot and kv_len are checked here for their shapes only, and their values on the
// device when device_checks (else the caller checked them).
void attention_decode(moe_backend& be, const moe_tensor* q, const moe_tensor* k_cache, const moe_tensor* v_cache,
                      const KvCacheShape& c, const moe_tensor* slot, const moe_tensor* kv_len, float scale,
                      moe_tensor* out, bool device_checks);

}  // namespace moe_cuda
