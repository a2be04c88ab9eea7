// The core's Tokenizer over the built plugin: the BOS choice for DeepSeek-V3, special token ids,
// thread safety of one tokenizer shared by many threads, streaming, and errors carried across.
#include <gtest/gtest.h>

#include "base/error.h"
#include "corpus.h"
#include "text/tokenizer.h"
#include "text_test_env.h"

namespace moe::test {
namespace {

using Ids = std::vector<int32_t>;

// transformers' LlamaTokenizerFast (DeepSeek-V3's tokenizer_class, add_bos_token true) puts BOS,
// id 0, in front; the raw tokenizer.json's post-processor (ByteLevel) adds nothing. With its
// tokenizer_config.json the plugin does what transformers does; without it, what tokenizer.json says.
TEST(CoreTokenizer, DeepSeekBosFollowsTokenizerConfig) {
  auto raw = Tokenizer::load(text_plugin(), deepseek_tokenizer_json(), "");
  auto configured = Tokenizer::load(text_plugin(), deepseek_tokenizer_json(), deepseek_tokenizer_config());
  Ids plain = raw->encode("Hello world", false).ids;
  EXPECT_EQ(raw->encode("Hello world", true).ids, plain);
  Ids with_bos = configured->encode("Hello world", true).ids;
  ASSERT_EQ(with_bos.size(), plain.size() + 1);
  EXPECT_EQ(with_bos[0], 0);
  EXPECT_EQ(Ids(with_bos.begin() + 1, with_bos.end()), plain);
  EXPECT_EQ(configured->encode("Hello world", false).ids, plain);
  EXPECT_EQ(configured->special_token_id("bos"), std::optional<int32_t>(0));
  EXPECT_EQ(configured->special_token_id("eos"), std::optional<int32_t>(1));
  EXPECT_EQ(raw->special_token_id("bos"), std::nullopt);
  EXPECT_EQ(raw->token_to_id("<\uFF5Cend\u2581of\u2581sentence\uFF5C>"), std::optional<int32_t>(1));
  EXPECT_EQ(raw->token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(raw->vocab_size(), 128815);
  EXPECT_EQ(configured->decode(with_bos, true), "Hello world");
  EXPECT_EQ(configured->decode(with_bos, false), "<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>Hello world");
}

TEST(CoreTokenizer, OneTokenizerServesManyThreads) {
  auto tok = Tokenizer::load(text_plugin(), repo_tokenizer("sp_bpe"), "");
  CorpusInputs inputs;
  inputs.fortunes_dir = "/usr/share/games/fortunes";
  inputs.multilingual_file = source_dir() + "/tests/text/corpus/multilingual.txt";
  std::vector<std::string> texts;
  for (const auto& line : build_corpus(inputs)) texts.push_back(line.text);
  std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<TextEncoding> one = tok->encode_batch(views, true, true, 1);
  std::vector<TextEncoding> many = tok->encode_batch(views, true, true, 4);
  ASSERT_EQ(one.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(one[i].ids, many[i].ids) << "text " << i;
    ASSERT_EQ(one[i].offsets, many[i].offsets) << "text " << i;
    ASSERT_EQ(one[i].ids, tok->encode(texts[i], true, true).ids);
  }
}

TEST(CoreTokenizer, OffsetsPointIntoTheInput) {
  auto tok = Tokenizer::load(text_plugin(), deepseek_tokenizer_json(), "");
  std::string text = "Hello 世界, 1234567 <\uFF5CUser\uFF5C> ok";
  TextEncoding e = tok->encode(text, false, true);
  ASSERT_EQ(e.offsets.size(), e.ids.size());
  int64_t previous_end = 0;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    auto [b, end] = e.offsets[i];
    EXPECT_LE(b, previous_end) << "a gap before token " << i;  // tokens cover the text (overlap only inside a character)
    EXPECT_LT(b, end);
    EXPECT_LE(end, static_cast<int64_t>(text.size()));
    previous_end = std::max(previous_end, end);
    // Byte-level tokens that hold whole characters decode to exactly their slice of the input.
    std::string piece = tok->decode(Ids{e.ids[i]}, false);
    if (piece.find("\uFFFD") == std::string::npos) {
      EXPECT_EQ(piece, text.substr(b, end - b)) << "token " << i;
    }
  }
  EXPECT_EQ(previous_end, static_cast<int64_t>(text.size()));
  EXPECT_EQ(e.offsets[0], (std::pair<int64_t, int64_t>{0, 5}));
}

TEST(CoreTokenizer, StreamGivesCompleteCharactersOnly) {
  auto tok = Tokenizer::load(text_plugin(), repo_tokenizer("sp_bpe"), "");
  std::string text = "Emoji \U0001F600 and \u4E2D\u6587 text";
  Ids ids = tok->encode(text, false).ids;
  auto stream = tok->stream(false);
  std::string streamed;
  for (int32_t id : ids) {
    std::string piece = stream->push(id);
    EXPECT_EQ(piece.find("\uFFFD"), std::string::npos) << "a broken character was emitted";
    streamed += piece;
  }
  streamed += stream->finish();
  EXPECT_EQ(streamed, text);
  EXPECT_THROW(stream->push(ids[0]), Error);
}

TEST(CoreTokenizer, PluginErrorsArriveWithTheirMessage) {
  auto tok = Tokenizer::load(text_plugin(), repo_tokenizer("sp_bpe"), "");
  try {
    tok->encode("bad \xC3(", false);
    FAIL() << "invalid UTF-8 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("offset 4"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::load(text_plugin(), "/nonexistent/tokenizer.json", "");
    FAIL() << "a missing file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MOE_ERR_IO);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moe::test
