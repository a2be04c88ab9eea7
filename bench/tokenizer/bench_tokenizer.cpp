// moe_bench_tokenizer: single-threaded encode/decode throughput of the text plugin on a corpus file
// (one text per line), through the core's Tokenizer over the plugin ABI (what libmoe does).
// Prints one JSON object (for compare.py) with MB/s; --ids-out writes the ids of every line.
//
// usage: moe_bench_tokenizer --tokenizer tokenizer.json --corpus FILE [--repeat N] [--ids-out FILE]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "plugins/registry.h"
#include "text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The best of `repeat` runs of f, in wall-clock seconds and in this thread's CPU seconds. On a
// shared machine the CPU time is the steadier measure of single-threaded speed.
struct Timing {
  double wall = 1e30, cpu = 1e30;
};
template <typename F>
Timing best_of(int repeat, F&& f) {
  Timing best;
  for (int r = 0; r < repeat; ++r) {
    auto t = Clock::now();
    double c = thread_cpu_seconds();
    f();
    best.cpu = std::min(best.cpu, thread_cpu_seconds() - c);
    best.wall = std::min(best.wall, seconds_since(t));
  }
  return best;
}

const moe_modality_ops& load_text_plugin() {
  const char* dir = std::getenv("MOE_PLUGIN_DIR");
  std::string path = std::string(dir ? dir : MOE_BENCH_PLUGIN_DIR) + "/libmoe_modality_text.so";
  moe::PluginRecord r = moe::load_plugin(path);
  if (!r.descriptor) throw std::runtime_error(path + ": " + r.reason);
  return *static_cast<const moe_modality_ops*>(r.descriptor->ops);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string tokenizer_path = arg(argc, argv, "tokenizer"), corpus_path = arg(argc, argv, "corpus");
  if (tokenizer_path.empty() || corpus_path.empty()) {
    std::cerr << "usage: moe_bench_tokenizer --tokenizer tokenizer.json --corpus FILE [--repeat N] [--ids-out FILE]\n";
    return 2;
  }
  int repeat = std::max(1, std::atoi(arg(argc, argv, "repeat", "3").c_str()));

  std::ifstream in(corpus_path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + corpus_path);
  std::stringstream content;
  content << in.rdbuf();
  std::string whole = content.str();
  std::vector<std::string> lines;
  for (std::string line; std::getline(content, line);) lines.push_back(line);
  size_t line_bytes = 0;
  for (const auto& l : lines) line_bytes += l.size();

  auto t = Clock::now();
  auto tok = moe::Tokenizer::load(load_text_plugin(), tokenizer_path, "");
  double load_s = seconds_since(t);

  std::vector<std::vector<int32_t>> ids(lines.size());
  size_t total_ids = 0;
  Timing lines_s = best_of(repeat, [&] {
    total_ids = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      ids[i] = tok->encode(lines[i], false).ids;
      total_ids += ids[i].size();
    }
  });
  Timing offsets_s = best_of(repeat, [&] {
    for (const auto& l : lines) tok->encode(l, false, true);
  });
  size_t whole_ids = 0;
  Timing whole_s = best_of(repeat, [&] { whole_ids = tok->encode(whole, false).ids.size(); });
  Timing decode_s = best_of(repeat, [&] {
    for (const auto& v : ids) tok->decode(v, false);
  });

  if (std::string out = arg(argc, argv, "ids-out"); !out.empty()) {
    std::ofstream f(out);
    for (const auto& v : ids) {
      for (size_t k = 0; k < v.size(); ++k) f << (k ? " " : "") << v[k];
      f << "\n";
    }
  }
  auto mbps = [](size_t bytes, double s) { return bytes / 1e6 / s; };
  std::printf(
      "{\"implementation\": \"moe text plugin\", \"lines\": %zu, \"bytes\": %zu, \"ids\": %zu, \"load_s\": %.3f,\n"
      " \"encode_lines_mb_s\": %.2f, \"encode_lines_mb_cpu_s\": %.2f, \"encode_lines_offsets_mb_s\": %.2f,\n"
      " \"encode_whole_mb_s\": %.2f, \"whole_ids\": %zu, \"decode_mb_s\": %.2f}\n",
      lines.size(), line_bytes, total_ids, load_s, mbps(line_bytes, lines_s.wall), mbps(line_bytes, lines_s.cpu),
      mbps(line_bytes, offsets_s.wall), mbps(whole.size(), whole_s.wall), whole_ids, mbps(line_bytes, decode_s.wall));
  return 0;
} catch (const std::exception& e) {
  std::cerr << "moe_bench_tokenizer: " << e.what() << "\n";
  return 1;
}
