// A 100 MB input: encoded in one call, in time that grows linearly with the input and memory bounded
// by the output (the text streams through normalizer, pre-tokenizer and model; words far longer than
// any token are merged in windows). Times are this thread's CPU time, steadier on a shared machine.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <ctime>

#include "corpus.h"
#include "text/tokenizer.h"
#include "text_test_env.h"

namespace moe::test {
namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

// About 10 MB of the test corpus (prose, other scripts, code, digits, whitespace, random Unicode),
// starting with a letter and ending with a newline, so that copies of it split apart cleanly.
std::string ten_megabytes() {
  CorpusInputs inputs;
  inputs.fortunes_dir = "/usr/share/games/fortunes";
  inputs.multilingual_file = source_dir() + "/tests/text/corpus/multilingual.txt";
  inputs.code_files = {source_dir() + "/tests/text/corpus.cpp", source_dir() + "/tests/text/test_peer_parity.cpp"};
  std::string block = "Start\n";
  for (uint64_t seed = 1; block.size() < 10'000'000; ++seed) {
    inputs.seed = seed;
    for (const auto& line : build_corpus(inputs)) block += line.text + "\n";
  }
  return block;
}

struct TimedEncoding {
  TextEncoding encoding;
  double seconds;
};

TimedEncoding timed_encode(const Tokenizer& tok, const std::string& text) {
  double t = cpu_seconds();
  TextEncoding e = tok.encode(text, false);
  return {std::move(e), cpu_seconds() - t};
}

TEST(LargeInput, DeepSeekEncodes100MegabytesLinearly) {
  auto tok = Tokenizer::load(text_plugin(), deepseek_tokenizer_json(), "");
  std::string block = ten_megabytes();
  std::string big;
  big.reserve(block.size() * 10);
  for (int i = 0; i < 10; ++i) big += block;
  TimedEncoding small = timed_encode(*tok, block);
  TimedEncoding large = timed_encode(*tok, big);
  std::printf("10 MB: %.2f s (%zu ids); 100 MB: %.2f s (%zu ids); ratio %.1f; peak RSS %ld MB\n", small.seconds,
              small.encoding.ids.size(), large.seconds, large.encoding.ids.size(), large.seconds / small.seconds,
              peak_rss_mb());
  // The copies split apart at their newline-then-letter seams, so the ids are the block's ten times.
  ASSERT_EQ(large.encoding.ids.size(), 10 * small.encoding.ids.size());
  for (size_t i = 0; i < large.encoding.ids.size(); ++i)
    ASSERT_EQ(large.encoding.ids[i], small.encoding.ids[i % small.encoding.ids.size()]) << "at id " << i;
  EXPECT_LT(large.seconds / small.seconds, 16.0) << "time grows faster than the input";
  EXPECT_LT(peak_rss_mb(), 2000) << "memory is not bounded by the output";
}

// Metaspace with split false makes the whole input one word for BPE: 100 MB merged in windows.
TEST(LargeInput, SentencePieceEncodes100MegabytesAsOneWordLinearly) {
  auto tok = Tokenizer::load(text_plugin(), repo_tokenizer("sp_bpe"), "");
  std::string block = ten_megabytes();
  std::string big;
  big.reserve(block.size() * 10);
  for (int i = 0; i < 10; ++i) big += block;
  TimedEncoding small = timed_encode(*tok, block);
  TimedEncoding large = timed_encode(*tok, big);
  std::printf("10 MB: %.2f s (%zu ids); 100 MB: %.2f s (%zu ids); ratio %.1f; peak RSS %ld MB\n", small.seconds,
              small.encoding.ids.size(), large.seconds, large.encoding.ids.size(), large.seconds / small.seconds,
              peak_rss_mb());
  EXPECT_LT(large.seconds / small.seconds, 16.0) << "time grows faster than the input";
  // The first copy encodes as the block alone does (no token spans its final newline), and the
  // block decodes back to itself, except that the format cannot keep a literal U+2581 (it is its
  // space character).
  ASSERT_GT(large.encoding.ids.size(), 9 * small.encoding.ids.size());
  EXPECT_TRUE(std::equal(small.encoding.ids.begin(), small.encoding.ids.end(), large.encoding.ids.begin()));
  std::string expected;
  for (size_t i = 0; i < block.size();) {
    if (block.compare(i, 3, "\u2581") == 0) {
      expected += ' ';
      i += 3;
    } else {
      expected += block[i++];
    }
  }
  std::string decoded = tok->decode(small.encoding.ids, false);
  size_t same = 0;
  while (same < decoded.size() && same < expected.size() && decoded[same] == expected[same]) ++same;
  EXPECT_TRUE(decoded == expected) << "the decoded block differs from byte " << same << ": \""
                                   << printable(decoded.substr(same, 40)) << "\" vs \"" << printable(expected.substr(same, 40)) << "\"";
  EXPECT_LT(peak_rss_mb(), 2000) << "memory is not bounded by the input and output";
}

}  // namespace
}  // namespace moe::test
