#include "op_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace moe_cuda {
namespace {

struct Total {
  double seconds = 0;
  std::vector<double> calls;  // each call's seconds: the median shows the steady cost without warm-up outliers
};

std::mutex& profile_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, Total>& totals() {
  static std::map<std::string, Total> t;
  return t;
}

}  // namespace

bool profiling_enabled() {
  const char* v = std::getenv("MOE_CUDA_PROFILE");
  return v && *v && std::strcmp(v, "0") != 0;
}

void profile_add(const char* op, double seconds) {
  std::lock_guard lock(profile_mutex());
  Total& t = totals()[op];
  t.seconds += seconds;
  t.calls.push_back(seconds);
}

void profile_report() {
  std::lock_guard lock(profile_mutex());
  std::vector<std::pair<std::string, Total>> rows(totals().begin(), totals().end());
  totals().clear();
  if (rows.empty()) return;
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double all = 0;
  for (const auto& r : rows) all += r.second.seconds;
  std::fprintf(stderr, "MOE_CUDA_PROFILE: ops of this instance, each waited for (%.3f s in all)\n", all);
  std::fprintf(stderr, "%-30s %8s %10s %6s %10s %10s %10s\n", "op", "calls", "total ms", "share", "mean us",
               "median us", "max us");
  for (auto& [name, t] : rows) {
    std::vector<double>& c = t.calls;
    std::sort(c.begin(), c.end());
    const double median = c.size() % 2 ? c[c.size() / 2] : 0.5 * (c[c.size() / 2 - 1] + c[c.size() / 2]);
    std::fprintf(stderr, "%-30s %8zu %10.2f %5.1f%% %10.1f %10.1f %10.1f\n", name.c_str(), c.size(), 1e3 * t.seconds,
                 100 * t.seconds / all, 1e6 * t.seconds / static_cast<double>(c.size()), 1e6 * median, 1e6 * c.back());
  }
}

}  // namespace moe_cuda
