// A per-thread cache of encoded words: natural text repeats its words constantly, and a cached
// word costs one hash lookup instead of a BPE merge. Results depend only on the word's bytes, so
// the cache is exact. Each thread keeps its own caches (the model stays read-only and needs no
// lock), one per model it has used recently, each bounded in size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bpe_model.h"

namespace moe::text {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 64;

  // The cached tokens of word (count set), or nullptr.
  const WordToken* find(std::string_view word, size_t& count) const;
  void insert(std::string_view word, const WordToken* tokens, size_t count);

  // This thread's cache for the model with the given id (ids are never reused).
  static WordCache& for_model(uint64_t model_id);

 private:
  static constexpr size_t kSlots = 1 << 15;
  static constexpr size_t kMaxEntries = kSlots / 2;
  struct Slot {
    uint64_t hash = 0;  // 0: empty
    uint32_t key_offset = 0;
    uint32_t tokens_offset = 0;
    uint16_t key_length = 0;
    uint16_t count = 0;
  };
  void clear();

  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<WordToken> tokens_;
  size_t entries_ = 0;
};

}  // namespace moe::text
