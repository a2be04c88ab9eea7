#include "bpe_model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>

#include "byte_level_alphabet.h"
#include "utf8.h"
#include "word_cache.h"

namespace moe::text {
namespace {

// Token ids are dense array indexes; a vocabulary claiming a larger id is refused before allocating.
constexpr int64_t kMaxTokenId = (1 << 24) - 1;
// Words of at most this many symbols merge with a simple scan; longer ones use a heap.
constexpr size_t kSmallWord = 48;
// Words are merged in windows of at least this many symbols, cut where no merged token can span
// the cut: exact, and it keeps very long words (one 100 MB run without spaces) linear in time and
// bounded in memory.
constexpr size_t kChunkSymbols = 256;
// A long word hands its tokens on (BpeScratch::drain) whenever this many have been found.
constexpr size_t kDrainTokens = 1 << 16;
constexpr uint32_t kNoMerge = ~0u;

std::atomic<uint64_t> next_model_id{1};

}  // namespace

BpeModel::BpeModel(const JsonNode& model, const TokenizerJson& lists, bool byte_level)
    : id_(next_model_id.fetch_add(1)), where_(model.where()), byte_level_(byte_level) {
  std::string type = model.string_or("type", "BPE");
  if (type != "BPE")
    model.error(MOE_ERR_UNSUPPORTED, "the model type \"" + type + "\" is not supported (this plugin implements BPE)");
  if (auto dropout = model.find("dropout"); dropout && dropout->number() > 0)
    dropout->error(MOE_ERR_UNSUPPORTED, "BPE dropout (random merges, for training) is not supported for encoding");
  unk_token_ = model.string_or("unk_token", "");
  fuse_unk_ = model.boolean_or("fuse_unk", false);
  byte_fallback_ = model.boolean_or("byte_fallback", false);
  ignore_merges_ = model.boolean_or("ignore_merges", false);
  prefix_ = model.string_or("continuing_subword_prefix", "");
  suffix_ = model.string_or("end_of_word_suffix", "");
  if (byte_level_) {
    for (std::string* affix : {&prefix_, &suffix_}) {
      auto raw = byte_level_decode(*affix);
      if (!raw) model.error(MOE_ERR_UNSUPPORTED, "a subword prefix/suffix outside the byte-level alphabet");
      *affix = *raw;
    }
  }
  // Captured lists are the normal case; a vocab or merges left in the document has the wrong type
  // (or is missing), which reading it reports.
  if (!lists.vocab_captured) model.at("vocab").object_size();
  by_text_.reserve(lists.vocab.size());
  if (byte_level_) by_symbol_.reserve(lists.vocab.size());
  // Ids index a dense table: a vocabulary whose ids are mostly holes is refused before allocating.
  int64_t largest = -1;
  for (const auto& entry : lists.vocab) largest = std::max(largest, entry.second);
  if (largest > static_cast<int64_t>(2 * lists.vocab.size()) + 65536 && largest <= kMaxTokenId)
    fail(MOE_ERR_FORMAT, where_ + ".vocab: its largest id is " + std::to_string(largest) + " for only " +
                             std::to_string(lists.vocab.size()) + " tokens; ids must be (nearly) dense");
  if (largest >= 0 && largest <= kMaxTokenId) {
    tokens_.reserve(static_cast<size_t>(largest) + 1);
    has_token_.reserve(static_cast<size_t>(largest) + 1);
  }
  std::string raw;
  for (const auto& [text, id] : lists.vocab) add_token(text, id, raw);
  if (!lists.merges_captured)
    if (auto merges = model.find("merges")) merges->array_size();
  merges_.reserve(lists.merges.size());
  // The merged text drops the continuing_subword_prefix of the right part (as spelled in the file).
  size_t prefix_length = byte_level_ ? byte_level_encode(prefix_).size() : prefix_.size();
  std::string merged, symbol;
  for (size_t i = 0; i < lists.merges.size(); ++i)
    add_merge(i, lists.merges[i].first, lists.merges[i].second, prefix_length, merged, symbol);

  unk_id_ = unk_token_.empty() ? -1 : by_text_.get(unk_token_);
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    fallback_ids_[b] = by_text_.get(name);
    char byte = static_cast<char>(b);
    byte_ids_[b] = byte_level_ ? by_symbol_.get(std::string_view(&byte, 1)) : -1;
  }
  if (byte_level_) {
    byte_pair_merges_.assign(256 * 256, Merge{kNoMerge, -1});
    for (int l = 0; l < 256; ++l)
      for (int r = 0; r < 256; ++r)
        if (byte_ids_[l] >= 0 && byte_ids_[r] >= 0)
          if (const Merge* m = merges_.get(byte_ids_[l], byte_ids_[r])) byte_pair_merges_[l * 256 + r] = *m;
  } else {
    bmp_ids_.assign(0x10000, -1);
    for (size_t id = 0; id < tokens_.size(); ++id) {
      const std::string& t = tokens_[id];
      if (!has_token_[id] || t.empty() || utf8_sequence_length(static_cast<unsigned char>(t[0])) != t.size()) continue;
      size_t pos = 0;
      uint32_t cp = next_code_point(t, pos);
      if (cp < 0x10000 && by_text_.get(t) == static_cast<int32_t>(id)) bmp_ids_[cp] = static_cast<int32_t>(id);
    }
  }
}

void BpeModel::add_token(const std::string& text, int64_t id, std::string& raw) {
  if (id < 0 || id > kMaxTokenId)
    fail(MOE_ERR_FORMAT, where_ + ".vocab[\"" + text + "\"]: the id " + std::to_string(id) + " is outside [0, " +
                             std::to_string(kMaxTokenId) + "]");
  if (static_cast<size_t>(id) >= tokens_.size()) {
    tokens_.resize(id + 1);
    has_token_.resize(id + 1, false);
  }
  if (!has_token_[id]) {
    tokens_[id] = text;
    has_token_[id] = true;
  }
  by_text_.set(text, static_cast<int32_t>(id));
  if (byte_level_) {
    // A token with characters outside the byte-level alphabet can never come out of byte-level
    // input: it stays decodable but is not a symbol.
    if (byte_level_decode_into(text, raw)) by_symbol_.set(raw, static_cast<int32_t>(id));
  }
}

void BpeModel::add_merge(size_t index, const std::string& left, const std::string& right, size_t prefix_length,
                         std::string& merged, std::string& symbol) {
  auto error = [&](const std::string& what) {
    fail(MOE_ERR_FORMAT, where_ + ".merges[" + std::to_string(index) + "]: " + what);
  };
  int32_t a = by_text_.get(left), b = by_text_.get(right);
  if (a < 0) error("the merge's left token \"" + left + "\" is not in the vocabulary");
  if (b < 0) error("the merge's right token \"" + right + "\" is not in the vocabulary");
  if (right.size() < prefix_length)
    error("the merge's right token \"" + right + "\" is shorter than continuing_subword_prefix");
  merged.assign(left).append(right, prefix_length, std::string::npos);
  int32_t id = by_text_.get(merged);
  if (id < 0) error("the merged token \"" + merged + "\" is not in the vocabulary");
  merges_.set(a, b, {static_cast<uint32_t>(index), id});
  // Byte pairs inside merged tokens: a word may be cut between any other two bytes.
  if (!byte_level_)
    symbol = merged;
  else if (!byte_level_decode_into(merged, symbol))
    return;  // never produced from byte-level input
  for (size_t k = 1; k < symbol.size(); ++k) {
    auto l = static_cast<uint8_t>(symbol[k - 1]), r = static_cast<uint8_t>(symbol[k]);
    joinable_[l * 4 + (r >> 6)] |= 1ull << (r & 63);
  }
}

int32_t BpeModel::unit_id(std::string_view unit, bool first, bool last) const {
  const StringIdMap& symbols = byte_level_ ? by_symbol_ : by_text_;
  if ((first || prefix_.empty()) && (!last || suffix_.empty())) {
    if (byte_level_ && unit.size() == 1) return byte_ids_[static_cast<uint8_t>(unit[0])];
    if (!byte_level_ && unit.size() <= 3) {
      size_t pos = 0;
      return bmp_ids_[next_code_point(unit, pos)];
    }
    return symbols.get(unit);
  }
  std::string s;
  if (!first) s += prefix_;
  s += unit;
  if (last) s += suffix_;
  return symbols.get(s);
}

const Merge* BpeModel::initial_merge(std::string_view word, const BpeScratch::Symbol& a,
                                     const BpeScratch::Symbol& b) const {
  // Plain byte-level symbols are byte_ids_[byte] unless a prefix or suffix is attached.
  if (byte_level_ && a.plain && b.plain && prefix_.empty() && suffix_.empty()) {
    const Merge& m = byte_pair_merges_[static_cast<uint8_t>(word[a.begin]) * 256 + static_cast<uint8_t>(word[b.begin])];
    return m.rank == kNoMerge ? nullptr : &m;
  }
  return merges_.get(a.id, b.id);
}

void BpeModel::merge_small(std::string_view word, BpeScratch::Symbol* s, size_t n, std::vector<WordToken>& out,
                           BpeScratch& scratch) const {
  auto& ranks = scratch.ranks;
  ranks.resize(n);
  auto rank_of = [&](size_t i) {
    const Merge* m = merges_.get(s[i].id, s[i + 1].id);
    return m ? m->rank : kNoMerge;
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    const Merge* m = initial_merge(word, s[i], s[i + 1]);
    ranks[i] = m ? m->rank : kNoMerge;
  }
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == kNoMerge) break;
    s[best].id = merges_.get(s[best].id, s[best + 1].id)->id;
    s[best].end = s[best + 1].end;
    for (size_t i = best + 1; i + 1 < n; ++i) {
      s[i] = s[i + 1];
      ranks[i] = ranks[i + 1];
    }
    --n;
    if (best > 0) ranks[best - 1] = rank_of(best - 1);
    if (best + 1 < n) ranks[best] = rank_of(best);
  }
  for (size_t i = 0; i < n; ++i) out.push_back({s[i].id, s[i].begin, s[i].end});
}

// Hugging Face's Word::merge_all: a min-heap of (rank, position); an entry whose pair changed since
// it was pushed is skipped (its rank no longer matches: each pair has one rank).
void BpeModel::merge_heap(std::string_view word, BpeScratch::Symbol* s, size_t n, std::vector<WordToken>& out,
                          BpeScratch& scratch) const {
  auto& heap = scratch.heap;
  heap.clear();
  auto key = [](uint32_t rank, size_t pos) { return (static_cast<uint64_t>(rank) << 32) | pos; };
  auto push = [&](size_t pos) {
    int32_t next = s[pos].next;
    if (next < 0) return;
    if (const Merge* m = merges_.get(s[pos].id, s[next].id)) {
      heap.push_back(key(m->rank, pos));
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (size_t i = 0; i < n; ++i) {
    s[i].prev = static_cast<int32_t>(i) - 1;
    s[i].next = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  for (size_t i = 0; i + 1 < n; ++i)
    if (const Merge* m = initial_merge(word, s[i], s[i + 1])) heap.push_back(key(m->rank, i));
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    uint64_t top = heap.back();
    heap.pop_back();
    auto pos = static_cast<size_t>(top & 0xFFFFFFFFu);
    auto rank = static_cast<uint32_t>(top >> 32);
    if (s[pos].id < 0 || s[pos].next < 0) continue;
    auto next = static_cast<size_t>(s[pos].next);
    const Merge* m = merges_.get(s[pos].id, s[next].id);
    if (!m || m->rank != rank) continue;
    s[pos].id = m->id;
    s[pos].end = s[next].end;
    s[pos].next = s[next].next;
    if (s[next].next >= 0) s[s[next].next].prev = static_cast<int32_t>(pos);
    s[next].id = -1;
    if (s[pos].prev >= 0) push(static_cast<size_t>(s[pos].prev));
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = s[i].next) out.push_back({s[i].id, s[i].begin, s[i].end});
}

void BpeModel::merge_range(std::string_view word, BpeScratch::Symbol* s, size_t n, std::vector<WordToken>& out,
                           BpeScratch& scratch) const {
  if (n <= kSmallWord)
    merge_small(word, s, n, out, scratch);
  else
    merge_heap(word, s, n, out, scratch);
}

void BpeModel::encode_word(std::string_view word, std::vector<WordToken>& out, BpeScratch& scratch) const {
  if (word.size() > WordCache::kMaxWordBytes) {
    encode_uncached(word, out, scratch);
    return;
  }
  WordCache& cache = WordCache::for_model(id_);
  size_t count = 0;
  if (const WordToken* hit = cache.find(word, count)) {
    out.insert(out.end(), hit, hit + count);
    return;
  }
  size_t first = out.size();
  encode_uncached(word, out, scratch);
  cache.insert(word, out.data() + first, out.size() - first);
}

void BpeModel::encode_uncached(std::string_view word, std::vector<WordToken>& out, BpeScratch& scratch) const {
  const StringIdMap& symbol_ids = byte_level_ ? by_symbol_ : by_text_;
  if (ignore_merges_) {
    int32_t id = symbol_ids.get(word);
    if (id >= 0) {
      out.push_back({id, 0, static_cast<uint32_t>(word.size())});
      return;
    }
  }
  auto& symbols = scratch.symbols;
  symbols.clear();
  bool unk_pending = false;
  uint32_t unk_begin = 0, unk_end = 0;
  auto flush_unk = [&] {
    if (unk_pending) symbols.push_back({unk_id_, unk_begin, unk_end, -1, -1, false});
    unk_pending = false;
  };
  // Long words are merged in windows, cut where no merged token can span the cut (exact: every
  // merge happens inside one window). Needs symbols that do not depend on their word position.
  bool can_cut = prefix_.empty() && suffix_.empty();
  for (size_t pos = 0; pos < word.size();) {
    size_t length = byte_level_ ? 1 : utf8_sequence_length(static_cast<unsigned char>(word[pos]));
    std::string_view unit = word.substr(pos, length);
    auto begin = static_cast<uint32_t>(pos), end = static_cast<uint32_t>(pos + length);
    bool first = pos == 0, last = pos + length == word.size();
    pos += length;
    int32_t id = unit_id(unit, first, last);
    if (id >= 0) {
      flush_unk();
      symbols.push_back({id, begin, end, -1, -1, true});
      size_t n = symbols.size();
      if (can_cut && n > kChunkSymbols && symbols[n - 2].plain && symbols[n - 2].end == begin &&
          !joinable(static_cast<uint8_t>(word[begin - 1]), static_cast<uint8_t>(word[begin]))) {
        merge_range(word, symbols.data(), n - 1, out, scratch);
        symbols[0] = symbols[n - 1];
        symbols.resize(1);
        if (scratch.drain && out.size() >= kDrainTokens) {
          scratch.drain(out);
          out.clear();
        }
      }
      continue;
    }
    if (byte_fallback_) {
      // The bytes of the unit as Hugging Face spells it (byte-level character, prefix, suffix).
      std::string spelled = byte_level_ ? byte_level_encode(unit) : std::string(unit);
      if (!first) spelled = (byte_level_ ? byte_level_encode(prefix_) : prefix_) + spelled;
      if (last) spelled += byte_level_ ? byte_level_encode(suffix_) : suffix_;
      bool all = std::all_of(spelled.begin(), spelled.end(), [&](char c) { return fallback_ids_[static_cast<uint8_t>(c)] >= 0; });
      if (all) {
        // Like Hugging Face, a pending unk is not flushed here: it follows these bytes.
        bool exact = spelled.size() == unit.size();
        for (size_t k = 0; k < spelled.size(); ++k) {
          uint32_t b = exact ? begin + static_cast<uint32_t>(k) : begin, e = exact ? b + 1 : end;
          symbols.push_back({fallback_ids_[static_cast<uint8_t>(spelled[k])], b, e, -1, -1, false});
        }
        continue;
      }
    }
    if (unk_token_.empty()) continue;  // no unk token: the unit is dropped, as Hugging Face does
    if (unk_id_ < 0) fail(MOE_ERR_FORMAT, where_ + ": unk_token \"" + unk_token_ + "\" is not in the vocabulary");
    if (unk_pending && fuse_unk_) {
      unk_end = end;
    } else {
      flush_unk();
      unk_pending = true;
      unk_begin = begin;
      unk_end = end;
    }
  }
  flush_unk();
  if (!symbols.empty()) merge_range(word, symbols.data(), symbols.size(), out, scratch);
}

}  // namespace moe::text
