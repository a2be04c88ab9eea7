// The BPE model's options, added tokens, decoders, post-processing, offsets and streaming decode,
// on small tokenizers built in the test.
#include <gtest/gtest.h>

#include "added_tokens.h"
#include "decode_stream.h"
#include "decoder.h"
#include "text_error.h"
#include "tokenizer_builder.h"

namespace moe::test {
namespace {

using text::Tokenizer;
using Ids = std::vector<int32_t>;

TEST(BpeModel, MergesApplyInRankOrderLeftmostFirst) {
  std::vector<std::string> vocab = {"a", "b", "c", "ab", "bc", "abc", "aa"};
  // "b c" ranks first: a|bc, then a+bc.
  EXPECT_EQ(encode(load(tokenizer_json(bpe_model(vocab, {"b c", "a b", "a bc"}))), "abc"), (Ids{5}));
  // "a b" ranks first: ab|c, and without "ab c" nothing more.
  EXPECT_EQ(encode(load(tokenizer_json(bpe_model(vocab, {"a b", "b c", "a bc"}))), "abc"), (Ids{3, 2}));
  // Equal ranks: the leftmost pair first.
  EXPECT_EQ(encode(load(tokenizer_json(bpe_model(vocab, {"a a"}))), "aaaaa"), (Ids{6, 6, 0}));
}

TEST(BpeModel, MergesAsStringsAndAsPairsAreTheSame) {
  std::vector<std::string> vocab = {"a", "b", "c", "ab", "bc", "abc"};
  nlohmann::json strings = bpe_model(vocab, {"b c", "a bc"});
  nlohmann::json pairs = strings;
  pairs["merges"] = nlohmann::json::array({nlohmann::json::array({"b", "c"}), nlohmann::json::array({"a", "bc"})});
  EXPECT_EQ(encode(load(tokenizer_json(strings)), "abcab"), encode(load(tokenizer_json(pairs)), "abcab"));
  EXPECT_EQ(encode(load(tokenizer_json(pairs)), "abcab"), (Ids{5, 0, 1}));
}

nlohmann::json with_bytes(std::vector<std::string> vocab) {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab.push_back(name);
  }
  return bpe_model(vocab, {});
}

TEST(BpeModel, ByteFallbackSpellsUnknownCharactersAsBytes) {
  nlohmann::json model = with_bytes({"a", "<unk>"});
  model["byte_fallback"] = true;
  model["unk_token"] = "<unk>";
  Tokenizer t = load(tokenizer_json(model));
  // é is C3 A9: <0xC3> is id 2 + 0xC3.
  EXPECT_EQ(encode(t, "aéa"), (Ids{0, 2 + 0xC3, 2 + 0xA9, 0}));
}

TEST(BpeModel, UnknownCharactersBecomeUnkFusedOrNot) {
  nlohmann::json model = bpe_model({"<unk>", "a"}, {});
  model["unk_token"] = "<unk>";
  model["fuse_unk"] = true;
  EXPECT_EQ(encode(load(tokenizer_json(model)), "axyza"), (Ids{1, 0, 1}));
  model["fuse_unk"] = false;
  EXPECT_EQ(encode(load(tokenizer_json(model)), "axyza"), (Ids{1, 0, 0, 0, 1}));
  // Without an unk token an unknown character is dropped (as Hugging Face does).
  EXPECT_EQ(encode(load(tokenizer_json(bpe_model({"a"}, {}))), "axa"), (Ids{0, 0}));
}

TEST(BpeModel, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  nlohmann::json model = bpe_model({"a", "b", "c", "ab", "abc"}, {"a b"});
  EXPECT_EQ(encode(load(tokenizer_json(model)), "abc"), (Ids{3, 2}));
  model["ignore_merges"] = true;
  EXPECT_EQ(encode(load(tokenizer_json(model)), "abc"), (Ids{4}));
}

TEST(BpeModel, SubwordPrefixAndWordSuffix) {
  nlohmann::json model = bpe_model({"a", "##b", "##c", "##bc"}, {"##b ##c"});
  model["continuing_subword_prefix"] = "##";
  EXPECT_EQ(encode(load(tokenizer_json(model)), "abc"), (Ids{0, 3}));
  nlohmann::json suffix = bpe_model({"a", "b", "b</w>", "ab</w>"}, {"a b</w>"});
  suffix["end_of_word_suffix"] = "</w>";
  EXPECT_EQ(encode(load(tokenizer_json(suffix)), "ab"), (Ids{3}));
  EXPECT_EQ(encode(load(tokenizer_json(suffix)), "ba"), (Ids{1}));  // "a</w>" is unknown: dropped
}

// Hugging Face's added_vocabulary.rs cases (without its Lowercase normalizer).
TEST(AddedTokens, SingleWordLstripRstripAndNormalized) {
  auto split = [](const nlohmann::json& added, const std::string& text, bool normalized_pass = false) {
    text::AddedVocabulary v(text::JsonNode(added, "test.json", "added_tokens"), text::NormalizerChain());
    std::vector<std::string> parts;
    v.split(
        text, normalized_pass, [&](size_t b, size_t e) { parts.push_back(text.substr(b, e - b)); },
        [&](int32_t id, size_t b, size_t e) {
          std::string part = "[";
          part += std::to_string(id);
          part += ':';
          part.append(text, b, e - b);
          part += ']';
          parts.push_back(part);
        });
    return parts;
  };
  nlohmann::json mask = {{{"id", 7}, {"content", "<mask>"}, {"single_word", true}, {"normalized", false}}};
  EXPECT_EQ(split(mask, "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            (std::vector<std::string>{"[7:<mask>]", " My name ", "[7:<mask>]", " A<mask> <mask>ony ", "[7:<mask>]"}));
  // A combining mark is a word character; punctuation is not.
  EXPECT_EQ(split(mask, "<mask>, <mask>- \u25cc\u0330<mask>"),
            (std::vector<std::string>{"[7:<mask>]", ", ", "[7:<mask>]", "- \u25cc\u0330<mask>"}));
  nlohmann::json strip = {{{"id", 1}, {"content", "<mask>"}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}}};
  EXPECT_EQ(split(strip, "Hi <mask> there\t<mask>\t<mask>\u2000"),
            (std::vector<std::string>{"Hi", "[1: <mask> ]", "there", "[1:\t<mask>\t]", "[1:<mask>\u2000]"}));
  nlohmann::json both = {{{"id", 1}, {"content", "[CLS]"}, {"special", true}, {"normalized", false}},
                         {{"id", 2}, {"content", "name"}, {"normalized", true}}};
  EXPECT_EQ(split(both, "[CLS] my name"), (std::vector<std::string>{"[1:[CLS]]", " my name"}));
  EXPECT_EQ(split(both, " my name", true), (std::vector<std::string>{" my ", "[2:name]"}));
  nlohmann::json longest = {{{"id", 1}, {"content", "<a>"}, {"normalized", false}}, {{"id", 2}, {"content", "<a><b>"}, {"normalized", false}}};
  EXPECT_EQ(split(longest, "x<a><b><a>"), (std::vector<std::string>{"x", "[2:<a><b>]", "[1:<a>]"}));
}

TEST(AddedTokens, NormalizedTokensMatchTheNormalizedText) {
  nlohmann::json j = tokenizer_json(bpe_model({"f", "i", "x", "<unk>"}, {}));
  j["normalizer"] = {{"type", "NFKC"}};
  j["added_tokens"] = {{{"id", 9}, {"content", "\uFB01x"}, {"normalized", true}}};  // "ﬁx" normalises to "fix"
  j["model"]["unk_token"] = "<unk>";
  Tokenizer t = load(j);
  EXPECT_EQ(encode(t, "\uFB01x"), (Ids{9}));
  EXPECT_EQ(encode(t, "fix fix"), (Ids{9, 3, 9}));
}

std::string decode_chain(const nlohmann::json& decoder, std::vector<std::string> tokens) {
  text::DecoderChain chain(text::JsonNode(decoder, "test.json", "decoder"));
  return chain.decode(std::move(tokens));
}

TEST(Decoders, EachTypeAsInHuggingFace) {
  EXPECT_EQ(decode_chain({{"type", "ByteLevel"}}, {"Hello", "\u0120my", "\u0120friend", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>"}),
            "Hello my friend<\uFF5Cend\u2581of\u2581sentence\uFF5C>");
  nlohmann::json meta = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}};
  EXPECT_EQ(decode_chain(meta, {"\u2581Hey", "\u2581friend!"}), "Hey friend!");
  meta["prepend_scheme"] = "never";
  EXPECT_EQ(decode_chain(meta, {"\u2581Hey", "\u2581friend!"}), " Hey friend!");
  EXPECT_EQ(decode_chain({{"type", "ByteFallback"}}, {"<0x61>", "b", "<0xE4>", "<0xB8>", "<0xAD>", "<0xGG>"}), "ab中<0xGG>");
  EXPECT_EQ(decode_chain({{"type", "Sequence"}, {"decoders", {{{"type", "Fuse"}}, {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}}}},
                         {"  a", "b  "}),
            " ab ");
  EXPECT_EQ(decode_chain({{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}}, {"\u2581a\u2581", "b"}), " a b");
  EXPECT_EQ(decode_chain({{"type", "Replace"}, {"pattern", {{"Regex", "\\d+"}}}, {"content", "#"}}, {"a12b3", "x"}), "a#b#x");
  EXPECT_EQ(text::DecoderChain().decode({"a", "b"}), "a b");  // no decoder: joined with spaces
}

nlohmann::json template_post(const std::vector<std::string>& before, const std::vector<std::string>& after,
                             const nlohmann::json& specials) {
  nlohmann::json single = nlohmann::json::array();
  for (const auto& t : before) single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  for (const auto& t : after) single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", nlohmann::json::array()}, {"special_tokens", specials}};
}

TEST(PostProcessor, TemplateAddsSpecialTokensOnlyWhenAsked) {
  nlohmann::json j = tokenizer_json(bpe_model({"<s>", "</s>", "a"}, {}));
  j["post_processor"] = template_post({"<s>"}, {"</s>"},
                                      {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
                                       {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}});
  Tokenizer t = load(j);
  text::Encoding e;
  t.encode("aa", true, true, e);
  EXPECT_EQ(e.ids, (Ids{0, 2, 2, 1}));
  EXPECT_EQ(e.offsets.front().begin, 0u);
  EXPECT_EQ(e.offsets.front().end, 0u);  // inserted: an empty range
  EXPECT_EQ(e.offsets.back().begin, 2u);
  EXPECT_EQ(e.offsets.back().end, 2u);
  EXPECT_EQ(encode(t, "aa", false), (Ids{2, 2}));
}

TEST(PostProcessor, TokenizerConfigFlagsReplaceTheTemplate) {
  nlohmann::json j = tokenizer_json(bpe_model({"<s>", "</s>", "a"}, {}));
  j["post_processor"] = {{"type", "ByteLevel"}, {"trim_offsets", false}};
  text::TokenizerConfig config;
  config.add_bos_token = true;
  config.add_eos_token = true;
  config.bos_token = "<s>";
  config.eos_token = "</s>";
  Tokenizer with(j.dump(), "t.json", config, "tokenizer_config.json");
  EXPECT_EQ(encode(with, "a", true), (Ids{0, 2, 1}));
  EXPECT_EQ(encode(with, "a", false), (Ids{2}));
  EXPECT_EQ(encode(load(j), "a", true), (Ids{2}));  // the raw tokenizer.json adds nothing
  config.bos_token.reset();
  try {
    Tokenizer broken(j.dump(), "t.json", config, "tokenizer_config.json");
    FAIL() << "add_bos_token without bos_token was accepted";
  } catch (const text::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: add_bos_token is true but bos_token is missing"),
              std::string::npos)
        << e.what();
  }
}

TEST(PostProcessor, ByteLevelTrimsSpacesFromOffsets) {
  // "Ġ" is the byte-level space; the merges build "Hi" and "Ġthere".
  nlohmann::json j = tokenizer_json(
      bpe_model({"H", "i", "\u0120", "t", "h", "e", "r", "Hi", "\u0120t", "\u0120th", "\u0120the", "\u0120ther", "\u0120there"},
                {"H i", "\u0120 t", "\u0120t h", "\u0120th e", "\u0120the r", "\u0120ther e"}));
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  j["post_processor"] = {{"type", "ByteLevel"}, {"trim_offsets", true}, {"add_prefix_space", false}};
  text::Encoding e;
  load(j).encode("Hi there", false, true, e);
  ASSERT_EQ(e.ids, (Ids{7, 12}));
  EXPECT_EQ(e.offsets[1].begin, 3u);  // " there" is bytes 2..8; its leading space is trimmed
  EXPECT_EQ(e.offsets[1].end, 8u);
}

// A token that holds part of a character covers the whole character (as in Hugging Face).
TEST(Offsets, ByteLevelTokensCoverWholeCharacters) {
  nlohmann::json j = tokenizer_json(bpe_model({"i", "j", "\u00e2", "\u0143", "\u00a2"}, {}));
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  text::Encoding e;
  load(j).encode("i\u2B62j", false, true, e);  // ⭢ is E2 AD A2: three byte tokens
  ASSERT_EQ(e.ids.size(), 5u);
  for (int k = 1; k <= 3; ++k) {
    EXPECT_EQ(e.offsets[k].begin, 1u);
    EXPECT_EQ(e.offsets[k].end, 4u);
  }
  EXPECT_EQ(e.offsets[4].begin, 4u);
}

TEST(DecodeStream, HoldsBackSplitCharactersAndMatchesDecode) {
  nlohmann::json model = with_bytes({"a", "\u2581b"});
  model["byte_fallback"] = true;
  nlohmann::json j = tokenizer_json(model);
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  Tokenizer t = load(j);
  auto byte = [](int b) { return 2 + b; };
  Ids ids = {1, byte(0xE4), byte(0xB8), byte(0xAD), 0, byte(0xF0), 1};
  text::DecodeStream s(t, false);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(s.push(id));
  pieces.push_back(s.finish());
  // "▁b" first: its space is stripped as in a full decode; 中 appears once complete; the lone
  // F0 can no longer complete when "▁b" follows, so it becomes U+FFFD then.
  EXPECT_EQ(pieces, (std::vector<std::string>{"b", "", "", "中", "a", "", "\uFFFD b", ""}));
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, t.decode(ids.data(), ids.size(), false));
  text::DecodeStream unknown(t, false);
  EXPECT_EQ(unknown.push(999999), "");  // an id the tokenizer does not have adds no text
}

}  // namespace
}  // namespace moe::test
