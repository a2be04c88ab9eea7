// Open-addressing tables for the hot lookups of encoding: token bytes -> id and (left id, right id)
// -> merge. Both are built once at load time and only read afterwards (safe from many threads).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace moe::text {

inline uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xBF58476D1CE4E5B9ull;
  uint64_t h = s.size() * k1;
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k2;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  h = (h ^ tail) * k1;
  h ^= h >> 32;
  return h;
}

// Byte strings -> int32 ids. Keys are copied into one arena.
class StringIdMap {
 public:
  void reserve(size_t n) {
    size_t want = 64;
    while (want * 3 < n * 4 + 4) want *= 2;
    if (want > slots_.size()) rehash(want);
  }
  // Inserts key, or overwrites its id.
  void set(std::string_view key, int32_t id) {
    if ((count_ + 1) * 4 > slots_.size() * 3) grow();
    uint64_t h = hash_bytes(key);
    size_t i = probe(key, h);
    if (slots_[i].id < 0) {
      slots_[i] = {h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
      arena_.append(key);
      ++count_;
    } else {
      slots_[i].id = id;
    }
  }
  // The id of key, or -1.
  int32_t get(std::string_view key) const {
    if (slots_.empty()) return -1;
    return slots_[probe(key, hash_bytes(key))].id;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;  // -1: empty
  };

  size_t probe(std::string_view key, uint64_t h) const {
    size_t mask = slots_.size() - 1, i = h & mask;
    while (slots_[i].id >= 0) {
      const Slot& s = slots_[i];
      if (s.hash == h && s.length == key.size() && std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
        return i;
      i = (i + 1) & mask;
    }
    return i;
  }

  void grow() { rehash(slots_.empty() ? 64 : slots_.size() * 2); }
  void rehash(size_t size) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(size, Slot{});
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      size_t mask = slots_.size() - 1, i = s.hash & mask;
      while (slots_[i].id >= 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

// A merge of two adjacent symbols: its priority (lower first) and the id it produces.
struct Merge {
  uint32_t rank;
  int32_t id;
};

// (left id, right id) -> Merge.
class PairMergeMap {
 public:
  void reserve(size_t n) {
    size_t want = 64;
    while (want < n * 2 + 2) want *= 2;
    if (want > slots_.size()) rehash(want);
  }
  void set(int32_t left, int32_t right, Merge merge) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    uint64_t key = make_key(left, right);
    size_t i = probe(key);
    if (slots_[i].key == kEmpty) ++count_;
    slots_[i] = {key, merge};
  }
  // The merge for the pair, or nullptr.
  const Merge* get(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const Slot& s = slots_[probe(make_key(left, right))];
    return s.key == kEmpty ? nullptr : &s.merge;
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge{};
  };
  static uint64_t make_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  size_t probe(uint64_t key) const {
    size_t mask = slots_.size() - 1, i = mix(key) & mask;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask;
    return i;
  }
  void grow() { rehash(slots_.empty() ? 64 : slots_.size() * 2); }
  void rehash(size_t size) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(size, Slot{});
    for (const Slot& s : old)
      if (s.key != kEmpty) slots_[probe(s.key)] = s;
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace moe::text
