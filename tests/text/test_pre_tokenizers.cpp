// Pre-tokenizers: what each cuts, how it rewrites, and where every piece came from in the input.
#include <gtest/gtest.h>

#include "text_error.h"
#include "pre_tokenizer.h"

namespace moe::text {
namespace {

struct Collected {
  std::vector<std::string> pieces;
  std::vector<std::pair<uint32_t, uint32_t>> origins;  // input range of each piece
};

class Collector final : public PieceSink {
 public:
  explicit Collector(Collected& c) : c_(c) {}
  void take(const Piece& p) override {
    c_.pieces.emplace_back(p.text.text());
    Span s = p.text.span(0, p.text.size());
    c_.origins.emplace_back(s.begin, s.end);
  }

 private:
  Collected& c_;
};

Collected pre_tokenize(const nlohmann::json& config, const std::string& text, bool at_origin = true) {
  bool byte_level = false;
  PreTokenizerChain chain(JsonNode(config, "test.json", "pre_tokenizer"), byte_level);
  Collected c;
  Collector sink(c);
  chain.run(Piece{SourceText(text, 0u), at_origin}, sink, true);
  return c;
}

using Strings = std::vector<std::string>;
using Origins = std::vector<std::pair<uint32_t, uint32_t>>;

nlohmann::json split_string(const std::string& s, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", s}}}, {"behavior", behavior}, {"invert", invert}};
}

// The examples of Hugging Face's SplitDelimiterBehavior documentation.
TEST(Split, EveryBehaviorOnTheDocumentedExample) {
  const std::string t = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_string("-", "Removed"), t).pieces, (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_string("-", "Isolated"), t).pieces, (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_string("-", "MergedWithPrevious"), t).pieces, (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_string("-", "MergedWithNext"), t).pieces, (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_string("-", "Contiguous"), t).pieces, (Strings{"the", "-", "final", "--", "countdown"}));
}

// Hugging Face's split.rs test: a word regex with invert, so the matches are the words.
TEST(Split, InvertedRegexOnHuggingFacesExample) {
  auto inverted = [](const std::string& behavior) {
    return nlohmann::json{{"type", "Split"}, {"pattern", {{"Regex", "\\w+|[^\\w\\s]+"}}}, {"behavior", behavior}, {"invert", true}};
  };
  const std::string t = "How are you doing?";
  Collected removed = pre_tokenize(inverted("Removed"), t);
  EXPECT_EQ(removed.pieces, (Strings{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(removed.origins, (Origins{{0, 3}, {4, 7}, {8, 11}, {12, 17}, {17, 18}}));
  EXPECT_EQ(pre_tokenize(inverted("Isolated"), t).pieces, (Strings{"How", " ", "are", " ", "you", " ", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(inverted("MergedWithPrevious"), t).pieces, (Strings{"How ", "are ", "you ", "doing", "?"}));
  EXPECT_EQ(pre_tokenize(inverted("MergedWithNext"), t).pieces, (Strings{"How", " are", " you", " doing", "?"}));
  EXPECT_EQ(pre_tokenize(inverted("Contiguous"), t).pieces, (Strings{"How", " ", "are", " ", "you", " ", "doing?"}));
}

TEST(Split, SequenceAppliesOneAfterAnother) {
  nlohmann::json seq = {{"type", "Sequence"},
                        {"pretokenizers", {split_string(" ", "Removed"), {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_EQ(pre_tokenize(seq, "ab12 c3").pieces, (Strings{"ab", "1", "2", "c", "3"}));
}

TEST(Digits, IndividualOrContiguous) {
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "Call 123 please").pieces,
            (Strings{"Call ", "1", "2", "3", " please"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "Call 123 please").pieces,
            (Strings{"Call ", "123", " please"}));
  // ASCII digits only, as in Hugging Face (char::is_ascii_digit).
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "a٣4").pieces, (Strings{"a٣", "4"}));
}

const char* kBar = "\xE2\x96\x81";  // U+2581

nlohmann::json metaspace(const std::string& scheme, bool split) {
  return {{"type", "Metaspace"}, {"replacement", kBar}, {"prepend_scheme", scheme}, {"split", split}};
}

// Hugging Face's metaspace.rs tests, with the offsets of the original text.
TEST(Metaspace, ReplacesSpacesPrependsAndSplits) {
  Collected c = pre_tokenize(metaspace("always", true), "Hey friend!");
  EXPECT_EQ(c.pieces, (Strings{std::string(kBar) + "Hey", std::string(kBar) + "friend!"}));
  EXPECT_EQ(c.origins, (Origins{{0, 3}, {3, 11}}));
  c = pre_tokenize(metaspace("always", true), "Hey   friend!");
  EXPECT_EQ(c.pieces, (Strings{std::string(kBar) + "Hey", kBar, kBar, std::string(kBar) + "friend!"}));
  EXPECT_EQ(c.origins, (Origins{{0, 3}, {3, 4}, {4, 5}, {5, 13}}));
}

TEST(Metaspace, PrependSchemes) {
  std::string bar = kBar;
  EXPECT_EQ(pre_tokenize(metaspace("first", false), "Hey friend").pieces, (Strings{bar + "Hey" + bar + "friend"}));
  // "first": only text at the very start of the input gets the prepended U+2581.
  EXPECT_EQ(pre_tokenize(metaspace("first", false), "Hey friend", false).pieces, (Strings{"Hey" + bar + "friend"}));
  EXPECT_EQ(pre_tokenize(metaspace("never", false), "Hey").pieces, (Strings{"Hey"}));
  EXPECT_EQ(pre_tokenize(metaspace("always", false), " Hey").pieces, (Strings{bar + "Hey"}));  // no second one
  nlohmann::json legacy = {{"type", "Metaspace"}, {"replacement", kBar}, {"add_prefix_space", false}};
  EXPECT_EQ(pre_tokenize(legacy, "Hey you").pieces, (Strings{"Hey", bar + "you"}));
}

// Hugging Face's byte_level.rs tests (pieces shown as raw bytes: the model works on bytes).
TEST(ByteLevel, SplitsLikeGpt2) {
  nlohmann::json no_prefix = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  Collected c = pre_tokenize(no_prefix, "Hello my friend, how is your day going?");
  EXPECT_EQ(c.pieces, (Strings{"Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"}));
  EXPECT_EQ(pre_tokenize(no_prefix, "Hello there       dear").pieces, (Strings{"Hello", " there", "      ", " dear"}));
  nlohmann::json prefix = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  c = pre_tokenize(prefix, "Hello my");
  EXPECT_EQ(c.pieces, (Strings{" Hello", " my"}));
  EXPECT_EQ(c.origins, (Origins{{0, 5}, {5, 8}}));
  nlohmann::json whole = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(pre_tokenize(whole, "Hello my friend").pieces, (Strings{"Hello my friend"}));
}

TEST(PreTokenizerChain, RejectsWhatItCannotRunAndNamesIt) {
  auto error_of = [](const nlohmann::json& config) {
    try {
      pre_tokenize(config, "x");
    } catch (const Error& e) {
      return std::make_pair(e.status(), std::string(e.what()));
    }
    return std::make_pair(MOE_OK, std::string());
  };
  auto [status, message] = error_of({{"type", "Whitespace"}});
  EXPECT_EQ(status, MOE_ERR_UNSUPPORTED);
  EXPECT_NE(message.find("\"Whitespace\""), std::string::npos) << message;
  EXPECT_NE(message.find("test.json: pre_tokenizer"), std::string::npos) << message;
  nlohmann::json after_byte_level = {{"type", "Sequence"},
                                     {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Digits"}}}}};
  std::tie(status, message) = error_of(after_byte_level);
  EXPECT_EQ(status, MOE_ERR_UNSUPPORTED);
  EXPECT_NE(message.find("after ByteLevel"), std::string::npos) << message;
  std::tie(status, message) = error_of(split_string("-", "Sideways"));
  EXPECT_EQ(status, MOE_ERR_FORMAT);
  EXPECT_NE(message.find("Sideways"), std::string::npos) << message;
}

}  // namespace
}  // namespace moe::text
