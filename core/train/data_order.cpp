#include "train/data_order.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace moe {

DataOrder::DataOrder(int64_t num_sequences, int64_t batch_size, bool shuffle, uint64_t seed)
    : num_sequences_(num_sequences), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {}

const std::vector<int64_t>& DataOrder::epoch(int64_t e) {
  if (e != cached_epoch_) {
    permutation_.resize(static_cast<size_t>(num_sequences_));
    std::iota(permutation_.begin(), permutation_.end(), 0);
    if (shuffle_) {
      // Fisher-Yates with our own draws: std::shuffle's use of the generator differs between libraries.
      std::mt19937_64 rng(seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(e + 1)));
      for (int64_t i = num_sequences_ - 1; i > 0; --i)
        std::swap(permutation_[i], permutation_[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
    }
    cached_epoch_ = e;
  }
  return permutation_;
}

std::vector<int64_t> DataOrder::batch(int64_t index) {
  std::vector<int64_t> rows;
  for (int64_t k = 0; k < batch_size_; ++k) {
    const int64_t position = index * batch_size_ + k;
    rows.push_back(epoch(position / num_sequences_)[static_cast<size_t>(position % num_sequences_)]);
  }
  return rows;
}

}  // namespace moe
