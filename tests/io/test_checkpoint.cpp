// Hugging Face model directories: the three weight layouts, and every way a directory can be wrong,
// each an error naming the directory or file and the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/dtype.h"
#include "io/checkpoint.h"
#include "io/safetensors_writer.h"
#include "io/tensor_convert.h"
#include "io_test_util.h"

namespace moe::io {
namespace {

using test::fails_with;

const std::string kQ = "model.layers.0.self_attn.q_proj.weight";
const std::string kK = "model.layers.0.self_attn.k_proj.weight";

class CheckpointDir : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(dir_ / "config.json", R"({"model_type": "mixtral", "hidden_size": 4})"); }

  // Writes a safetensors file of f32 tensors [2, 3] with values base, base+1, ...
  void shard(const std::string& file, const std::vector<std::string>& names, float base = 0.0f) {
    storage_.emplace_back();
    std::vector<TensorToWrite> tensors;
    for (const auto& name : names) {
      std::vector<float> values(6);
      for (int i = 0; i < 6; ++i) values[i] = base + static_cast<float>(i);
      storage_.back().push_back(values);
      tensors.push_back({name, MOE_DTYPE_F32, {2, 3}, storage_.back().back().data()});
      base += 10.0f;
    }
    write_safetensors(dir_ / file, tensors, {{"format", "pt"}});
  }

  void index(const std::string& weight_map) {
    test::write_file(dir_ / "model.safetensors.index.json",
                     R"({"metadata": {"total_size": 48}, "weight_map": )" + weight_map + "}");
  }

  test::TempDir dir_;
  std::vector<std::vector<std::vector<float>>> storage_;
};

TEST_F(CheckpointDir, SingleFile) {
  shard("model.safetensors", {kQ, kK});
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_EQ(ck.directory(), dir_.path());
  EXPECT_EQ(ck.weights_source(), "model.safetensors");
  EXPECT_EQ(ck.config().get_int("hidden_size"), 4);
  EXPECT_EQ(ck.config().source(), dir_ / "config.json");
  EXPECT_EQ(ck.names(), (std::vector<std::string>{kK, kQ}));
  EXPECT_TRUE(ck.has(kQ));
  EXPECT_FALSE(ck.has("lm_head.weight"));
  EXPECT_EQ(ck.tensor(kQ).shape, (Shape{2, 3}));
  EXPECT_EQ(ck.tensor(kQ).file, dir_ / "model.safetensors");
  EXPECT_NO_THROW(ck.expect_shape(ck.tensor(kQ), {2, 3}));
}

TEST_F(CheckpointDir, ShardedWithIndex) {
  const std::string kV = "model.layers.0.self_attn.v_proj.weight";
  shard("model-00001-of-00002.safetensors", {kQ});
  shard("model-00002-of-00002.safetensors", {kK, kV, "extra.not.in.index"}, 100.0f);
  index(R"({")" + kQ + R"(": "model-00001-of-00002.safetensors", ")" + kK + R"(": "model-00002-of-00002.safetensors", ")" +
        kV + R"(": "model-00002-of-00002.safetensors"})");
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_EQ(ck.weights_source(), "model.safetensors.index.json");
  EXPECT_EQ(ck.names(), (std::vector<std::string>{kK, kQ, kV}));  // what the index lists
  EXPECT_EQ(ck.tensor(kK).file, dir_ / "model-00002-of-00002.safetensors");
  // The shard was opened once: both views point into the same file object and mapping.
  EXPECT_EQ(ck.tensor(kK).file.data(), ck.tensor(kV).file.data());
  EXPECT_EQ(static_cast<const char*>(ck.tensor(kV).data) - static_cast<const char*>(ck.tensor(kK).data), 24);
  std::vector<float> k(6);
  ck.read_f32(kK, k);
  EXPECT_EQ(k[0], 100.0f);
  EXPECT_EQ(k[5], 105.0f);
}

TEST_F(CheckpointDir, SingleFileIsPreferredOverAnIndex) {
  shard("model.safetensors", {kQ});
  index(R"({"x": "absent.safetensors"})");
  EXPECT_EQ(Checkpoint::open(dir_.path()).weights_source(), "model.safetensors");
}

TEST_F(CheckpointDir, AnySafetensorsFilesWithoutAnIndex) {
  shard("b.safetensors", {kK});
  shard("a.safetensors", {kQ});
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_EQ(ck.weights_source(), "2 *.safetensors files");
  EXPECT_EQ(ck.names(), (std::vector<std::string>{kK, kQ}));
  EXPECT_EQ(ck.tensor(kQ).file, dir_ / "a.safetensors");
}

TEST_F(CheckpointDir, DuplicateTensorAcrossFilesNamesBothFiles) {
  shard("a.safetensors", {kQ});
  shard("b.safetensors", {kK, kQ});
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {"tensor '" + kQ + "'", dir_ / "a.safetensors", dir_ / "b.safetensors"}));
}

TEST_F(CheckpointDir, MissingDirectory) {
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_ / "nope"); }, MOE_ERR_NOT_FOUND, {dir_ / "nope", "does not exist"}));
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_ / "config.json"); }, MOE_ERR_NOT_FOUND,
                         {dir_ / "config.json", "not a directory"}));
}

TEST_F(CheckpointDir, MissingConfig) {
  shard("model.safetensors", {kQ});
  std::filesystem::remove(dir_ / "config.json");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_NOT_FOUND, {dir_.path(), "config.json"}));
}

TEST_F(CheckpointDir, MalformedConfig) {
  shard("model.safetensors", {kQ});
  test::write_file(dir_ / "config.json", "{\"model_type\": \"mixtral\",\n \"hidden_size\": 4,,\n}");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT, {dir_ / "config.json", "line 2"}));
}

TEST_F(CheckpointDir, NoWeights) {
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_NOT_FOUND,
                         {dir_.path(), "model.safetensors", "model.safetensors.index.json"}));
}

TEST_F(CheckpointDir, MalformedIndex) {
  shard("s.safetensors", {kQ});
  test::write_file(dir_ / "model.safetensors.index.json", "{\"weight_map\": {\"a\": }}");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", "malformed", "line 1"}));
  test::write_file(dir_ / "model.safetensors.index.json", "{\"metadata\": {}}");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", "'weight_map'", "missing"}));
  index(R"({")" + kQ + R"(": 3})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", "'weight_map." + kQ + "'", "string"}));
}

TEST_F(CheckpointDir, IndexNamingAMissingShard) {
  shard("model-00001-of-00002.safetensors", {kQ});
  index(R"({")" + kQ + R"(": "model-00001-of-00002.safetensors", ")" + kK + R"(": "model-00002-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_NOT_FOUND,
                         {dir_ / "model.safetensors.index.json", "tensor '" + kK + "'",
                          dir_ / "model-00002-of-00002.safetensors"}));
}

TEST_F(CheckpointDir, IndexPlacingATensorInAShardThatLacksIt) {
  shard("model-00001-of-00001.safetensors", {kQ});
  index(R"({")" + kQ + R"(": "model-00001-of-00001.safetensors", ")" + kK + R"(": "model-00001-of-00001.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", "tensor '" + kK + "'",
                          dir_ / "model-00001-of-00001.safetensors", "no such tensor"}));
}

TEST_F(CheckpointDir, IndexCannotPointOutsideTheDirectory) {
  index(R"({")" + kQ + R"(": "../elsewhere.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", "'../elsewhere.safetensors'", "inside the model directory"}));
  index(R"({")" + kQ + R"(": "/etc/passwd"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT, {"'/etc/passwd'"}));
}

TEST_F(CheckpointDir, ABadShardIsNamedWithTheIndex) {
  test::write_file(dir_ / "s.safetensors", test::safetensors_image("{}", "", 1000));
  index(R"({")" + kQ + R"(": "s.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint::open(dir_.path()); }, MOE_ERR_FORMAT,
                         {dir_ / "model.safetensors.index.json", dir_ / "s.safetensors", "header length 1000"}));
}

TEST_F(CheckpointDir, MissingTensorMessage) {
  shard("model-00001-of-00001.safetensors", {kK});
  index(R"({")" + kK + R"(": "model-00001-of-00001.safetensors"})");
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_TRUE(fails_with([&] { ck.tensor(kQ); }, MOE_ERR_NOT_FOUND,
                         {"tensor '" + kQ + "' not found in " + dir_.path() + " (model.safetensors.index.json)"}));
}

TEST_F(CheckpointDir, MisShapedTensorMessage) {
  shard("model.safetensors", {kQ});
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_TRUE(fails_with([&] { ck.expect_shape(ck.tensor(kQ), {3, 2}); }, MOE_ERR_FORMAT,
                         {"tensor '" + kQ + "' in " + (dir_ / "model.safetensors") + " has shape [2, 3], expected [3, 2]"}));
}

TEST_F(CheckpointDir, UnsupportedDtypeTensorIsListedButNotReadable) {
  test::write_file(dir_ / "model.safetensors",
                   test::safetensors_image(R"({"mask":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", "TF"));
  Checkpoint ck = Checkpoint::open(dir_.path());
  EXPECT_TRUE(ck.has("mask"));
  EXPECT_TRUE(fails_with([&] { ck.tensor("mask"); }, MOE_ERR_UNSUPPORTED, {dir_ / "model.safetensors", "'mask'", "BOOL"}));
}

// Converting reads: every float dtype into f32 and bf16, with PyTorch's rounding.
TEST_F(CheckpointDir, ReadsFloatTensorsAsF32AndBf16) {
  const std::vector<float> f32{1.0f, -2.5f, 3.14159274f, 1e-20f};
  std::vector<uint16_t> bf16, f16{0x3c00, 0xc100, 0x4248, 0x0001};  // f16: 1, -2.5, 3.140625, 2^-24
  for (float v : f32) bf16.push_back(f32_to_bf16(v));
  const std::vector<double> f64{1.0, -2.5, 3.141592653589793, 1e-300};
  const std::vector<int64_t> i64{1, 2, 3, 4};
  write_safetensors(dir_ / "model.safetensors", {{"f32", MOE_DTYPE_F32, {4}, f32.data()},
                                                 {"bf16", MOE_DTYPE_BF16, {4}, bf16.data()},
                                                 {"f16", MOE_DTYPE_F16, {2, 2}, f16.data()},
                                                 {"f64", MOE_DTYPE_F64, {4}, f64.data()},
                                                 {"i64", MOE_DTYPE_I64, {4}, i64.data()}});
  Checkpoint ck = Checkpoint::open(dir_.path());
  std::vector<float> out(4);
  ck.read_f32("f32", out);
  EXPECT_EQ(out, f32);
  ck.read_f32("bf16", out);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], bf16_to_f32(bf16[i]));
  ck.read_f32("f16", out);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.5f, 3.140625f, std::ldexp(1.0f, -24)}));
  ck.read_f32("f64", out);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.5f, 3.14159274f, 0.0f}));

  std::vector<uint16_t> b(4);
  ck.read_bf16("f32", b);
  EXPECT_EQ(b, bf16);
  EXPECT_EQ(b[2], 0x4049);  // pi rounds to nearest even: 3.140625
  ck.read_bf16("bf16", b);
  EXPECT_EQ(b, bf16);
  ck.read_bf16("f64", b);
  EXPECT_EQ(b[1], f32_to_bf16(-2.5f));

  EXPECT_TRUE(fails_with([&] { ck.read_f32("i64", out); }, MOE_ERR_FORMAT,
                         {"tensor 'i64'", dir_ / "model.safetensors", "i64", "f32"}));
  EXPECT_TRUE(fails_with([&] { ck.read_bf16("i64", b); }, MOE_ERR_FORMAT, {"tensor 'i64'", "bf16"}));
  std::vector<float> wrong(5);
  EXPECT_TRUE(fails_with([&] { ck.read_f32("f32", wrong); }, MOE_ERR_INVALID_ARGUMENT,
                         {"tensor 'f32'", "4 elements", "holds 5"}));
  EXPECT_TRUE(fails_with([&] { ck.read_f32("nope", out); }, MOE_ERR_NOT_FOUND, {"tensor 'nope'"}));
}

}  // namespace
}  // namespace moe::io
