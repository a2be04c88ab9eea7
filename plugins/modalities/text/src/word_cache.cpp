#include "word_cache.h"

#include <algorithm>
#include <cstring>

#include "hash_tables.h"

namespace moe::text {
namespace {

// How many models' caches one thread keeps (a thread using more evicts the oldest).
constexpr size_t kModelsPerThread = 4;

uint64_t slot_hash(std::string_view word) { return hash_bytes(word) | 1; }

}  // namespace

const WordToken* WordCache::find(std::string_view word, size_t& count) const {
  if (slots_.empty() || word.size() > kMaxWordBytes) return nullptr;
  uint64_t h = slot_hash(word);
  for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
    const Slot& s = slots_[i];
    if (s.hash == 0) return nullptr;
    if (s.hash == h && s.key_length == word.size() && std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      count = s.count;
      return tokens_.data() + s.tokens_offset;
    }
  }
}

void WordCache::insert(std::string_view word, const WordToken* tokens, size_t count) {
  if (word.size() > kMaxWordBytes || count > 0xFFFF) return;
  if (slots_.empty()) slots_.assign(kSlots, Slot{});
  if (entries_ >= kMaxEntries) clear();
  uint64_t h = slot_hash(word);
  size_t i = h & (kSlots - 1);
  while (slots_[i].hash != 0) i = (i + 1) & (kSlots - 1);
  slots_[i] = {h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(tokens_.size()),
               static_cast<uint16_t>(word.size()), static_cast<uint16_t>(count)};
  keys_.append(word);
  tokens_.insert(tokens_.end(), tokens, tokens + count);
  ++entries_;
}

void WordCache::clear() {
  std::fill(slots_.begin(), slots_.end(), Slot{});
  keys_.clear();
  tokens_.clear();
  entries_ = 0;
}

WordCache& WordCache::for_model(uint64_t model_id) {
  thread_local std::vector<std::pair<uint64_t, std::unique_ptr<WordCache>>> caches;
  for (auto& [id, cache] : caches)
    if (id == model_id) return *cache;
  if (caches.size() == kModelsPerThread) caches.erase(caches.begin());
  caches.emplace_back(model_id, std::make_unique<WordCache>());
  return *caches.back().second;
}

}  // namespace moe::text
