// Bad input gives a status and a message naming the file and the key (or the byte) at fault; nothing
// crashes. Tokenizer files are built in the test; the plugin's C functions are called as the host does.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "text_error.h"
#include "moe/moe_plugin.h"
#include "text_test_env.h"
#include "tokenizer_builder.h"

namespace moe::test {
namespace {

struct Failure {
  moe_status status = MOE_OK;
  std::string message;
};

template <typename F>
Failure failure_of(F&& f) {
  try {
    f();
  } catch (const text::Error& e) {
    return {e.status(), e.what()};
  }
  return {};
}

Failure load_failure(const std::string& json_text) {
  return failure_of([&] { text::Tokenizer(json_text, "bad/tokenizer.json"); });
}

nlohmann::json good() { return tokenizer_json(bpe_model({"a", "b", "ab"}, {"a b"})); }

void expect_names(const Failure& f, moe_status status, std::initializer_list<const char*> fragments) {
  EXPECT_EQ(f.status, status) << f.message;
  for (const char* fragment : fragments) EXPECT_NE(f.message.find(fragment), std::string::npos) << "\"" << fragment << "\" not in: " << f.message;
}

TEST(BadTokenizerJson, MalformedTruncatedOrEmpty) {
  expect_names(load_failure("{\"model\": "), MOE_ERR_FORMAT, {"bad/tokenizer.json", "not valid JSON"});
  expect_names(load_failure("{\"model\": {\"vocab\": {\"a\": 0,}}}"), MOE_ERR_FORMAT, {"bad/tokenizer.json", "byte"});
  expect_names(load_failure(""), MOE_ERR_FORMAT, {"bad/tokenizer.json", "empty"});
  expect_names(load_failure("[1, 2]"), MOE_ERR_FORMAT, {"bad/tokenizer.json", "object"});
  // A real tokenizer.json cut in the middle (of the merges).
  std::ifstream in(repo_tokenizer("sp_bpe"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {text.size() / 2, text.size() - 2, size_t{1}})
    expect_names(load_failure(text.substr(0, cut)), MOE_ERR_FORMAT, {"bad/tokenizer.json", "not valid JSON"});
}

TEST(BadTokenizerJson, MissingFileIsAnIoErrorNamingIt) {
  Failure f = failure_of([] { text::load_tokenizer("/nonexistent/dir/tokenizer.json", ""); });
  expect_names(f, MOE_ERR_IO, {"/nonexistent/dir/tokenizer.json", "cannot open"});
}

TEST(BadTokenizerJson, UnknownComponentTypesAreNamed) {
  auto with = [](const char* key, nlohmann::json value) {
    nlohmann::json j = good();
    j[key] = std::move(value);
    return load_failure(j.dump());
  };
  expect_names(with("pre_tokenizer", {{"type", "Whitespace"}}), MOE_ERR_UNSUPPORTED, {"pre_tokenizer", "\"Whitespace\""});
  expect_names(with("normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}}),
               MOE_ERR_UNSUPPORTED, {"normalizer.normalizers[1]", "\"Lowercase\""});
  expect_names(with("decoder", {{"type", "WordPiece"}}), MOE_ERR_UNSUPPORTED, {"decoder", "\"WordPiece\""});
  expect_names(with("post_processor", {{"type", "RobertaProcessing"}}), MOE_ERR_UNSUPPORTED, {"post_processor", "\"RobertaProcessing\""});
  nlohmann::json unigram = good();
  unigram["model"]["type"] = "Unigram";
  expect_names(load_failure(unigram.dump()), MOE_ERR_UNSUPPORTED, {"model", "\"Unigram\""});
  expect_names(with("pre_tokenizer", {{"kind", "Split"}}), MOE_ERR_FORMAT, {"pre_tokenizer", "\"type\" is missing"});
}

TEST(BadTokenizerJson, BadVocabularyAndMergesNameTheEntry) {
  nlohmann::json j = good();
  j["model"]["merges"] = {"a b", "a c"};
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.merges[1]", "\"c\" is not in the vocabulary"});
  j["model"]["merges"] = {"a b c"};
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.merges[0]", "one space"});
  j["model"]["merges"] = {nlohmann::json::array({"a"})};
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.merges[0]"});
  j = good();
  j["model"]["vocab"]["c"] = "three";
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.vocab[\"c\"]", "integer"});
  j["model"]["vocab"]["c"] = 2000000000;  // would need a 2-billion-entry table
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.vocab[\"c\"]", "outside"});
  j["model"]["vocab"]["c"] = 10000000;  // allowed in size, but four tokens cannot need ten million slots
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.vocab", "dense"});
  j = good();
  j["model"]["vocab"] = nlohmann::json::array();
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model.vocab", "object"});
  j = good();
  j["model"].erase("vocab");
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"model", "\"vocab\" is missing"});
  j = good();
  j["added_tokens"] = {{{"content", "<x>"}}};
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"added_tokens[0]", "\"id\" is missing"});
  j = good();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"pre_tokenizer.pattern.Regex", "(unclosed", "does not compile"});
}

TEST(BadTokenizerJson, DeeplyNestedSequencesAreRefused) {
  nlohmann::json n = {{"type", "NFC"}};
  for (int i = 0; i < 40; ++i) n = {{"type", "Sequence"}, {"normalizers", {n}}};
  nlohmann::json j = good();
  j["normalizer"] = n;
  expect_names(load_failure(j.dump()), MOE_ERR_FORMAT, {"nested too deeply"});
}

TEST(BadText, InvalidUtf8IsAnErrorNamingTheByteAndOffset) {
  text::Tokenizer t = load(good());
  for (const auto& [text, offset, byte] : std::vector<std::tuple<std::string, size_t, std::string>>{
           {"ab\xC3", 2, "0xC3"}, {"a\xED\xA0\x80", 1, "0xED"}, {"\xFF", 0, "0xFF"}, {"ok\xC0\xAF", 2, "0xC0"}}) {
    Failure f = failure_of([&] { encode(t, text); });
    expect_names(f, MOE_ERR_INVALID_ARGUMENT, {"not valid UTF-8", byte.c_str(), ("offset " + std::to_string(offset)).c_str()});
  }
}

TEST(BadIds, DecodingAnIdOutsideTheTokenizerNamesIt) {
  text::Tokenizer t = load(good());
  int32_t ids[] = {0, 7, 1};
  expect_names(failure_of([&] { t.decode(ids, 3, false); }), MOE_ERR_INVALID_ARGUMENT, {"ids[1] = 7", "0..2"});
  int32_t negative[] = {-5};
  expect_names(failure_of([&] { t.decode(negative, 1, false); }), MOE_ERR_INVALID_ARGUMENT, {"-5"});
}

// The plugin's C functions, called with what a careless host might pass.
TEST(PluginAbi, NullAndOutOfRangeArgumentsAreStatusesNotCrashes) {
  const moe_modality_ops& ops = text_plugin();
  moe_plugin_tokenizer* tok = nullptr;
  EXPECT_EQ(ops.tokenizer_load(nullptr, nullptr, &tok), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.tokenizer_load("x", nullptr, nullptr), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.tokenizer_load("/nonexistent/tokenizer.json", nullptr, &tok), MOE_ERR_IO);
  EXPECT_EQ(tok, nullptr);
  ASSERT_EQ(ops.tokenizer_load(repo_tokenizer("sp_bpe").c_str(), nullptr, &tok), MOE_OK);
  moe_encoding e{};
  EXPECT_EQ(ops.encode(nullptr, "a", 1, 0, 0, &e), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.encode(tok, nullptr, 5, 0, 0, &e), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.encode(tok, "a", 1, 0, 0, nullptr), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.encode(tok, "\xFF", 1, 0, 0, &e), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(e.ids, nullptr);
  char* text = nullptr;
  size_t length = 0;
  int32_t ids[] = {1, 2};
  EXPECT_EQ(ops.decode(tok, nullptr, 2, 0, &text, &length), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.decode(tok, ids, -1, 0, &text, &length), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.decode(tok, ids, 2, 0, nullptr, &length), MOE_ERR_INVALID_ARGUMENT);
  int32_t id = 0;
  EXPECT_EQ(ops.token_to_id(tok, "no such token", &id), MOE_ERR_NOT_FOUND);
  EXPECT_EQ(ops.stream_push(nullptr, 1, &text, &length), MOE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ops.stream_finish(nullptr, &text, &length), MOE_ERR_INVALID_ARGUMENT);
  ops.tokenizer_free(tok);
  ops.tokenizer_free(nullptr);
}

}  // namespace
}  // namespace moe::test
