// What the benchmark programs share: the ids they feed (the same generator as the Python peers', so both
// engines see the same ids), a stopwatch, the median, and JSON lists of numbers.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace moe_bench {

// splitmix64 from `state`, each draw modulo vocab: bench/peer/time_peer.py and bench/gpu/peer_transformers.py draw the same.
inline std::vector<int32_t> random_ids(uint64_t state, size_t count, int64_t vocab) {
  std::vector<int32_t> ids(count);
  for (auto& id : ids) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    id = static_cast<int32_t>((z ^ (z >> 31)) % static_cast<uint64_t>(vocab));
  }
  return ids;
}

template <class F>
double seconds(F&& f) {
  auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// significant_digits: how many digits each value keeps (printf's %.Ng).
inline std::string json_list(const std::vector<double>& v, int significant_digits) {
  std::string s = "[";
  char buf[40];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.*g", i ? ", " : "", significant_digits, v[i]);
    s += buf;
  }
  return s + "]";
}

inline std::string json_list(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

}  // namespace moe_bench
