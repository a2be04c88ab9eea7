// Which sequences of a dataset form each micro-batch: the dataset read in order, or as a stream of
// per-epoch permutations drawn from the seed. Micro-batch j is a pure function of (seed, j), so a run
// stopped and resumed at any step sees exactly the batches of an uninterrupted one.
#pragma once

#include <cstdint>
#include <vector>

namespace moe {

class DataOrder {
 public:
  DataOrder(int64_t num_sequences, int64_t batch_size, bool shuffle, uint64_t seed);
  // The sequence indices of micro-batch `index`.
  std::vector<int64_t> batch(int64_t index);

 private:
  const std::vector<int64_t>& epoch(int64_t e);

  int64_t num_sequences_, batch_size_;
  bool shuffle_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> permutation_;
};

}  // namespace moe
