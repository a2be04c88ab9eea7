// What a generate call decodes with: a KV cache with a slot per row and the decode steps recorded for it
// (RecordedDecode). The model keeps the last session that recorded steps for the next call with as many
// rows whose cache fits (Model::take_decode_session), so a server-like loop of generate calls records each step size
// once, not once per call; stale cache entries are never read (a row attends to its own positions only,
// which its prefill rewrote). Caches over 1 GiB are not kept.
#pragma once

#include <cstdint>
#include <memory>

#include "model/kv_cache.h"
#include "model/recorded_decode.h"

namespace moe {

class DecodeSession {
 public:
  DecodeSession(const Transformer& transformer, Backend& backend, const ModelConfig& config, int64_t rows,
                int64_t capacity)
      : cache(backend, config, rows, capacity, inference_kv_layout(config)),
        recorded(transformer, backend, cache, config.vocab_size),
        layout_latent(cache.latent()) {}
  // A cache of `rows` slots at least `capacity` long, not much longer (a kept session must not pin far
  // more memory than the call needs), in the layout inference wants now.
  bool fits(int64_t rows, int64_t capacity, const ModelConfig& config) const {
    return cache.slots() == rows && cache.capacity() >= capacity && cache.capacity() <= 2 * capacity &&
           layout_latent == (inference_kv_layout(config) == KvLayout::kLatent);
  }

  KvCache cache;
  RecordedDecode recorded;  // after the cache: destroyed (its replays waited for) first
  bool layout_latent;
};

}  // namespace moe
