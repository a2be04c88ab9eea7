// JSON parsing and ConfigReader: values read right, and every bad input is a clear error naming the
// file and the key.
#include <gtest/gtest.h>

#include "io/config_reader.h"
#include "io/json_file.h"
#include "io_test_util.h"

namespace moe::io {
namespace {

using test::fails_with;

ConfigReader config(const std::string& text) { return ConfigReader(parse_json(text, "/m/config.json"), "/m/config.json"); }

TEST(JsonFile, ParsesAFile) {
  test::TempDir dir;
  test::write_file(dir / "a.json", "{\"x\": [1, 2.5, \"s\", null, true]}");
  Json j = read_json_file(dir / "a.json");
  EXPECT_EQ(j["x"][0], 1);
  EXPECT_EQ(j["x"][1], 2.5);
  EXPECT_EQ(j["x"][2], "s");
}

TEST(JsonFile, MalformedJsonNamesTheFileLineAndByte) {
  test::TempDir dir;
  const std::string path = dir / "config.json";
  test::write_file(path, "{\n  \"a\": 1,\n  \"b\": }\n");
  EXPECT_TRUE(fails_with([&] { read_json_file(path); }, MOE_ERR_FORMAT, {path, "line 3, column 8", "byte 20"}));
}

TEST(JsonFile, TruncatedAndEmptyDocumentsAreMalformed) {
  EXPECT_TRUE(fails_with([] { parse_json("{\"a\": [1, 2", "src.json"); }, MOE_ERR_FORMAT, {"src.json", "malformed"}));
  EXPECT_TRUE(fails_with([] { parse_json("", "src.json"); }, MOE_ERR_FORMAT, {"src.json"}));
  EXPECT_TRUE(fails_with([] { parse_json("{} x", "src.json"); }, MOE_ERR_FORMAT, {"src.json"}));
}

TEST(JsonFile, NumberTooLargeForADoubleIsMalformed) {
  EXPECT_TRUE(fails_with([] { parse_json("{\"a\": 1e999}", "src.json"); }, MOE_ERR_FORMAT, {"src.json", "1e999"}));
}

TEST(JsonFile, MissingFileIsNotFoundNamingIt) {
  test::TempDir dir;
  EXPECT_TRUE(fails_with([&] { read_json_file(dir / "nope.json"); }, MOE_ERR_NOT_FOUND, {dir / "nope.json"}));
}

TEST(JsonFile, DirectoryIsAnIoError) {
  test::TempDir dir;
  EXPECT_TRUE(fails_with([&] { read_json_file(dir.path()); }, MOE_ERR_IO, {dir.path(), "not a regular file"}));
}

TEST(JsonFile, NestingLimitStopsDeepDocuments) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_TRUE(fails_with([&] { parse_json(deep, "deep.json"); }, MOE_ERR_LIMIT, {"deep.json", "64 levels"}));
  JsonLimits three;
  three.max_depth = 3;
  EXPECT_NO_THROW(parse_json("{\"a\":{\"b\":[1]}}", "ok.json", three));
  EXPECT_TRUE(fails_with([&] { parse_json("{\"a\":{\"b\":[[1]]}}", "x.json", three); }, MOE_ERR_LIMIT, {"x.json"}));
}

TEST(JsonFile, ArrayLengthLimit) {
  JsonLimits limits;
  limits.max_array_length = 3;
  EXPECT_NO_THROW(parse_json("[1, [2, 3, 4], 5]", "ok.json", limits));
  EXPECT_TRUE(fails_with([&] { parse_json("[[1], [2], [3], [4]]", "x.json", limits); }, MOE_ERR_LIMIT,
                         {"x.json", "longer than 3"}));
}

TEST(ConfigReader, ReadsTheMixtralFixture) {
  const std::string path = test::reference_dir("mixtral") + "/config.json";
  ConfigReader c = ConfigReader::from_file(path);
  EXPECT_EQ(c.source(), path);
  EXPECT_EQ(c.get_string("model_type"), "mixtral");
  EXPECT_EQ(c.get_positive_int("hidden_size"), 64);
  EXPECT_EQ(c.get_int("num_local_experts"), 8);
  EXPECT_DOUBLE_EQ(c.get_float("rms_norm_eps"), 1e-5);
  EXPECT_FALSE(c.get_bool("tie_word_embeddings"));
  EXPECT_TRUE(c.has("head_dim"));
  EXPECT_TRUE(c.is_null("head_dim"));
  EXPECT_TRUE(c.is_null("q_lora_rank"));  // absent
  EXPECT_FALSE(c.has("q_lora_rank"));
  EXPECT_EQ(c.get_int_or("head_dim", 16), 16);
  EXPECT_EQ(c.object("rope_parameters").get_float("rope_theta"), 10000.0);
  EXPECT_EQ(c.object("rope_parameters").get_string("rope_type"), "default");
  EXPECT_EQ(c.get_string_list("architectures"), std::vector<std::string>{"MixtralForCausalLM"});
  EXPECT_EQ(c.get_int_list("eos_token_id"), std::vector<int64_t>{2});
}

TEST(ConfigReader, TopLevelMustBeAnObject) {
  EXPECT_TRUE(fails_with([] { config("[1, 2]"); }, MOE_ERR_FORMAT, {"/m/config.json", "object", "array"}));
  EXPECT_TRUE(fails_with([] { config("7"); }, MOE_ERR_FORMAT, {"/m/config.json", "object"}));
}

TEST(ConfigReader, MissingKeyNamesFileAndKey) {
  auto c = config("{}");
  EXPECT_TRUE(fails_with([&] { c.get_int("hidden_size"); }, MOE_ERR_FORMAT, {"/m/config.json", "'hidden_size'", "missing"}));
  EXPECT_TRUE(fails_with([&] { c.get_float("rms_norm_eps"); }, MOE_ERR_FORMAT, {"'rms_norm_eps'", "missing"}));
  EXPECT_TRUE(fails_with([&] { c.get_bool("x"); }, MOE_ERR_FORMAT, {"'x'", "missing"}));
  EXPECT_TRUE(fails_with([&] { c.get_string("x"); }, MOE_ERR_FORMAT, {"'x'", "missing"}));
  EXPECT_TRUE(fails_with([&] { c.object("rope_parameters"); }, MOE_ERR_FORMAT, {"'rope_parameters'", "missing"}));
}

TEST(ConfigReader, IntegersAreCheckedForTypeAndRange) {
  auto c = config(R"({"a": 4096.0, "b": 64.5, "c": "64", "d": 18446744073709551615, "e": -3, "f": 1e300,
                      "g": 9223372036854775807, "h": true, "i": null, "z": 0})");
  EXPECT_EQ(c.get_int("a"), 4096);
  EXPECT_TRUE(fails_with([&] { c.get_int("b"); }, MOE_ERR_FORMAT, {"/m/config.json", "'b'", "integer", "64.5"}));
  EXPECT_TRUE(fails_with([&] { c.get_int("c"); }, MOE_ERR_FORMAT, {"'c'", "integer", "string \"64\""}));
  EXPECT_TRUE(fails_with([&] { c.get_int("d"); }, MOE_ERR_FORMAT, {"'d'", "64 bits"}));
  EXPECT_EQ(c.get_int("e"), -3);
  EXPECT_TRUE(fails_with([&] { c.get_int("f"); }, MOE_ERR_FORMAT, {"'f'", "integer"}));
  EXPECT_EQ(c.get_int("g"), INT64_MAX);
  EXPECT_TRUE(fails_with([&] { c.get_int("h"); }, MOE_ERR_FORMAT, {"'h'", "boolean"}));
  EXPECT_TRUE(fails_with([&] { c.get_int("i"); }, MOE_ERR_FORMAT, {"'i'", "null"}));
  EXPECT_TRUE(fails_with([&] { c.get_positive_int("e"); }, MOE_ERR_FORMAT, {"'e'", "positive", "-3"}));
  EXPECT_TRUE(fails_with([&] { c.get_positive_int("z"); }, MOE_ERR_FORMAT, {"'z'", "positive", "0"}));
  EXPECT_EQ(c.get_non_negative_int("z"), 0);
  EXPECT_TRUE(fails_with([&] { c.get_non_negative_int("e"); }, MOE_ERR_FORMAT, {"'e'", "non-negative"}));
}

TEST(ConfigReader, OptionalAccessorsUseTheFallbackOnlyWhenMissingOrNull) {
  auto c = config(R"({"n": null, "k": 5, "s": "x", "bad": "5"})");
  EXPECT_EQ(c.get_int_or("missing", 7), 7);
  EXPECT_EQ(c.get_int_or("n", 7), 7);
  EXPECT_EQ(c.get_int_or("k", 7), 5);
  EXPECT_EQ(c.get_positive_int_or("n", 2), 2);
  EXPECT_EQ(c.get_non_negative_int_or("n", 0), 0);
  EXPECT_DOUBLE_EQ(c.get_float_or("missing", 1e-6), 1e-6);
  EXPECT_DOUBLE_EQ(c.get_float_or("k", 1e-6), 5.0);
  EXPECT_TRUE(c.get_bool_or("missing", true));
  EXPECT_EQ(c.get_string_or("n", "fallback"), "fallback");
  EXPECT_EQ(c.get_string_or("s", "fallback"), "x");
  // A present value of the wrong type is still an error, not the fallback.
  EXPECT_TRUE(fails_with([&] { c.get_int_or("bad", 1); }, MOE_ERR_FORMAT, {"'bad'", "integer"}));
  EXPECT_TRUE(fails_with([&] { c.get_float_or("s", 1.0); }, MOE_ERR_FORMAT, {"'s'", "number"}));
  EXPECT_TRUE(fails_with([&] { c.get_bool_or("k", false); }, MOE_ERR_FORMAT, {"'k'", "true or false"}));
  EXPECT_TRUE(fails_with([&] { c.get_positive_int_or("bad", 1); }, MOE_ERR_FORMAT, {"'bad'", "integer"}));
}

TEST(ConfigReader, FloatsAcceptIntegersAndBoolsAreStrict) {
  auto c = config(R"({"theta": 10000, "eps": 1e-6, "flag": 1, "t": true})");
  EXPECT_EQ(c.get_float("theta"), 10000.0);
  EXPECT_DOUBLE_EQ(c.get_float("eps"), 1e-6);
  EXPECT_TRUE(fails_with([&] { c.get_bool("flag"); }, MOE_ERR_FORMAT, {"'flag'", "true or false", "1"}));
  EXPECT_TRUE(c.get_bool("t"));
  EXPECT_TRUE(fails_with([&] { c.get_float("t"); }, MOE_ERR_FORMAT, {"'t'", "number"}));
}

TEST(ConfigReader, NestedObjectsNameTheFullKey) {
  auto c = config(R"({"rope_scaling": {"factor": "4", "type": "yarn", "inner": {"x": []}}, "flat": 3})");
  ConfigReader r = c.object("rope_scaling");
  EXPECT_EQ(r.source(), "/m/config.json");
  EXPECT_EQ(r.get_string("type"), "yarn");
  EXPECT_TRUE(fails_with([&] { r.get_float("factor"); }, MOE_ERR_FORMAT,
                         {"/m/config.json", "'rope_scaling.factor'", "number"}));
  EXPECT_TRUE(fails_with([&] { r.get_float("beta_fast"); }, MOE_ERR_FORMAT, {"'rope_scaling.beta_fast'", "missing"}));
  EXPECT_TRUE(fails_with([&] { r.object("inner").get_int("x"); }, MOE_ERR_FORMAT,
                         {"'rope_scaling.inner.x'", "array"}));
  EXPECT_TRUE(fails_with([&] { c.object("flat"); }, MOE_ERR_FORMAT, {"'flat'", "object"}));
  EXPECT_EQ(r.keys(), (std::vector<std::string>{"factor", "inner", "type"}));
}

TEST(ConfigReader, Lists) {
  auto c = config(R"({"eos": [1, 2], "one": 3, "bad": [1, "2"], "names": ["a", "b"], "mixed": ["a", 1]})");
  EXPECT_EQ(c.get_int_list("eos"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.get_int_list("one"), (std::vector<int64_t>{3}));
  EXPECT_TRUE(fails_with([&] { c.get_int_list("bad"); }, MOE_ERR_FORMAT, {"'bad[1]'", "integer"}));
  EXPECT_EQ(c.get_string_list("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(fails_with([&] { c.get_string_list("mixed"); }, MOE_ERR_FORMAT, {"'mixed[1]'", "string"}));
  EXPECT_TRUE(fails_with([&] { c.get_string_list("one"); }, MOE_ERR_FORMAT, {"'one'", "list of strings"}));
}

TEST(ConfigReader, LongValuesAreShortenedInMessages) {
  auto c = config("{\"s\": \"" + std::string(1000, 'x') + "\"}");
  try {
    c.get_int("s");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u) << e.what();
  }
}

TEST(ConfigReader, MalformedConfigFileNamesTheFile) {
  test::TempDir dir;
  const std::string path = dir / "config.json";
  test::write_file(path, "{\"hidden_size\": 64,,}");
  EXPECT_TRUE(fails_with([&] { ConfigReader::from_file(path); }, MOE_ERR_FORMAT, {path, "line 1"}));
}

}  // namespace
}  // namespace moe::io
