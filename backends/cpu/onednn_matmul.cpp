#include "onednn_matmul.h"

#include <omp.h>

#include <cstring>

#include "parallel.h"
#include "thread_scratch.h"

namespace moe_cpu {
namespace {

using dt = dnnl::memory::data_type;

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

}  // namespace

bool MatmulCache::Key::operator==(const Key& o) const {
  const MatmulShape &a = shape, &b = o.shape;
  // Floats by their bits: equal values give equal primitives, and a NaN alpha still finds itself.
  return threads == o.threads && a.m == b.m && a.n == b.n && a.k == b.k && a.lda == b.lda && a.ldb == b.ldb &&
         a.ldc == b.ldc &&
         a.a_type == b.a_type && a.b_type == b.b_type && a.trans_a == b.trans_a && a.trans_b == b.trans_b &&
         bits_of(a.alpha) == bits_of(b.alpha) && bits_of(a.beta) == bits_of(b.beta);
}

size_t MatmulCache::KeyHash::operator()(const Key& key) const {
  const MatmulShape& s = key.shape;
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  mix(static_cast<uint64_t>(key.threads));
  mix(static_cast<uint64_t>(s.m));
  mix(static_cast<uint64_t>(s.n));
  mix(static_cast<uint64_t>(s.k));
  mix(static_cast<uint64_t>(s.lda));
  mix(static_cast<uint64_t>(s.ldb));
  mix(static_cast<uint64_t>(s.ldc));
  mix(static_cast<uint64_t>(s.a_type) << 16 | static_cast<uint64_t>(s.b_type) << 2 | (s.trans_a ? 2 : 0) |
      (s.trans_b ? 1 : 0));
  mix(uint64_t{bits_of(s.alpha)} << 32 | bits_of(s.beta));
  return static_cast<size_t>(h);
}

MatmulCache::MatmulCache(int threads) : threads_(threads), engine_(dnnl::engine::kind::cpu, 0) {}

uint64_t MatmulCache::primitives_created() const {
  std::lock_guard lock(mutex_);
  return created_;
}

std::shared_ptr<const MatmulCache::Entry> MatmulCache::create(const MatmulShape& s, int threads) const {
  auto entry = std::make_shared<Entry>();
  entry->a = s.trans_a ? dnnl::memory::desc({s.m, s.k}, s.a_type, {1, s.lda})
                       : dnnl::memory::desc({s.m, s.k}, s.a_type, {s.lda, 1});
  entry->b = s.trans_b ? dnnl::memory::desc({s.k, s.n}, s.b_type, {1, s.ldb})
                       : dnnl::memory::desc({s.k, s.n}, s.b_type, {s.ldb, 1});
  entry->c = dnnl::memory::desc({s.m, s.n}, dt::f32, {s.ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.alpha != 1.f) attr.set_output_scales(0, {s.alpha});
  if (s.beta != 0.f) {
    dnnl::post_ops post;
    post.append_sum(s.beta);
    attr.set_post_ops(post);
  }
  // oneDNN sizes its blocking by the thread count seen at creation.
  OmpThreadCount team(threads);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(entry->a, entry->b, entry->c), attr, engine_);
  entry->scratchpad = pd.scratchpad_desc();
  entry->primitive = dnnl::matmul(pd);
  return entry;
}

std::shared_ptr<const MatmulCache::Entry> MatmulCache::find_or_create(const MatmulShape& shape, int threads) {
  const Key key{shape, threads};
  {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  // Created outside the lock: JIT compilation takes a while and other shapes need not wait. Two
  // threads missing on the same key both create; the first insert wins.
  auto entry = create(shape, threads);
  std::lock_guard lock(mutex_);
  ++created_;
  if (auto it = index_.find(key); it != index_.end()) return it->second->second;
  lru_.emplace_front(key, entry);
  index_.emplace(key, lru_.begin());
  while (lru_.size() > kCapacity) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return entry;
}

void MatmulCache::run(const MatmulShape& shape, const void* a, const void* b, float* c) {
  // One thread inside a parallel region (oneDNN would run serially there anyway) and for small
  // products; all of the instance's threads otherwise.
  const double flops = 2.0 * static_cast<double>(shape.m) * static_cast<double>(shape.n) * static_cast<double>(shape.k);
  const int threads = omp_in_parallel() || flops < kParallelFlops ? 1 : threads_;
  auto entry = find_or_create(shape, threads);
  OmpThreadCount team(threads);
  dnnl::stream stream(engine_);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(entry->a, engine_, const_cast<void*>(a))},
      {DNNL_ARG_WEIGHTS, dnnl::memory(entry->b, engine_, const_cast<void*>(b))},
      {DNNL_ARG_DST, dnnl::memory(entry->c, engine_, c)}};
  if (size_t bytes = entry->scratchpad.get_size())
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(entry->scratchpad, engine_, thread_scratch(ScratchSlot::kOnednnScratchpad, bytes)));
  entry->primitive.execute(stream, args);
  stream.wait();
}

}  // namespace moe_cpu
