// oneDNN matmul primitives, created once per distinct shape and kept in a bounded LRU cache.
//
// A primitive is specialised for everything in MatmulShape (sizes, strides, types, alpha, beta and,
// through the instance, the thread count), so all of it is the key. Execution is thread-safe: the
// primitives use a user-managed scratchpad, which comes from the calling thread's scratch memory, and
// each call makes its own stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

namespace moe_cpu {

// C[m, n] = alpha * A' . B' + beta * C with row stride ldc. A' is A [m, k], or with trans_a the
// transpose of A [k, m]; B' is B [k, n], or with trans_b the transpose of B [n, k] (nn.Linear
// weights). Transposed operands are read in place through the strides of oneDNN's memory
// descriptors; lda and ldb are the row strides of A and B as stored. A and B have the types given;
// C is f32.
struct MatmulShape {
  int64_t m, n, k, lda, ldb, ldc;
  dnnl::memory::data_type a_type, b_type;
  bool trans_a, trans_b;
  float alpha, beta;
};

class MatmulCache {
 public:
  // Products of fewer flops than this run on one thread: split over two they gain less than the
  // parallel region costs (at ~100 GFLOP/s per core, 4 MFLOP is ~40 us).
  static constexpr double kParallelFlops = 4e6;

  // The most primitives kept; the least recently used is dropped beyond it.
  static constexpr size_t kCapacity = 512;

  explicit MatmulCache(int threads);

  void run(const MatmulShape& shape, const void* a, const void* b, float* c);

  // Primitives created so far (a cache miss each), for the benchmarks' account of the cache.
  uint64_t primitives_created() const;

 private:
  struct Key {
    MatmulShape shape;
    int threads;  // the primitive's blocking depends on it
    bool operator==(const Key& other) const;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const;
  };
  struct Entry {
    dnnl::matmul primitive;
    dnnl::memory::desc a, b, c, scratchpad;
  };
  using Lru = std::list<std::pair<Key, std::shared_ptr<const Entry>>>;

  std::shared_ptr<const Entry> find_or_create(const MatmulShape& shape, int threads);
  std::shared_ptr<const Entry> create(const MatmulShape& shape, int threads) const;

  const int threads_;
  dnnl::engine engine_;
  mutable std::mutex mutex_;
  Lru lru_;  // most recently used first
  std::unordered_map<Key, Lru::iterator, KeyHash> index_;
  uint64_t created_ = 0;
};

}  // namespace moe_cpu
