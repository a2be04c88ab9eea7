// How a split keeps the pattern's matches (Hugging Face's SplitDelimiterBehavior), applied while
// the matches stream past: "the-final--countdown" split on '-' gives
//   Removed            the | final | countdown
//   Isolated           the | - | final | - | - | countdown
//   MergedWithPrevious the- | final- | - | countdown
//   MergedWithNext     the | -final | - | -countdown
//   Contiguous         the | - | final | -- | countdown
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "json_access.h"

namespace moe::text {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_split_behavior(const JsonNode& node);

// Receives the runs of a text in order, each a match or the gap between matches, and calls
// emit(begin, end) for every part the behavior keeps.
template <typename Emit>
class SplitCombiner {
 public:
  SplitCombiner(SplitBehavior behavior, Emit emit) : behavior_(behavior), emit_(std::forward<Emit>(emit)) {}

  void add(size_t begin, size_t end, bool is_match) {
    switch (behavior_) {
      case SplitBehavior::Removed:
        if (!is_match) emit_(begin, end);
        return;
      case SplitBehavior::Isolated: emit_(begin, end); return;
      case SplitBehavior::MergedWithPrevious:
        if (is_match && !previous_match_ && pending_) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end);
        }
        break;
      case SplitBehavior::MergedWithNext:
        if (pending_ && previous_match_ && !is_match) {
          emit_(pending_begin_, end);
          pending_ = false;
        } else {
          flush();
          hold(begin, end);
        }
        break;
      case SplitBehavior::Contiguous:
        if (pending_ && is_match == previous_match_) {
          pending_end_ = end;
        } else {
          flush();
          hold(begin, end);
        }
        break;
    }
    previous_match_ = is_match;
  }
  void finish() { flush(); }

 private:
  void hold(size_t begin, size_t end) {
    pending_ = true;
    pending_begin_ = begin;
    pending_end_ = end;
  }
  void flush() {
    if (pending_) emit_(pending_begin_, pending_end_);
    pending_ = false;
  }

  SplitBehavior behavior_;
  Emit emit_;
  bool pending_ = false;
  bool previous_match_ = false;
  size_t pending_begin_ = 0, pending_end_ = 0;
};

// Feeds the runs of text [0, size) to a combiner given the matches (in order, non-overlapping):
// on_match(begin, end) is called by for_each_match; invert swaps which runs count as matches.
template <typename ForEachMatch, typename Emit>
void split_runs(size_t size, ForEachMatch&& for_each_match, SplitBehavior behavior, bool invert, Emit&& emit) {
  SplitCombiner<Emit&> combiner(behavior, emit);
  size_t previous = 0;
  for_each_match([&](size_t begin, size_t end) {
    if (previous != begin) combiner.add(previous, begin, invert);
    combiner.add(begin, end, !invert);
    previous = end;
  });
  if (previous != size) combiner.add(previous, size, invert);
  combiner.finish();
}

}  // namespace moe::text
