// The reader against real files written by transformers 5.17 (tests/reference): every checkpoint
// opens, and every tensor of every file agrees with the independent numpy reader on name, dtype,
// shape, first values and a checksum of all its bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/dtype.h"
#include "io/checkpoint.h"
#include "io/safetensors_dtype.h"
#include "io/tensor_convert.h"
#include "io_test_util.h"

namespace moe::io {
namespace {

const char* const kFixtures[] = {"mixtral", "mixtral_sharded", "mixtral_other_layout", "deepseek_v3", "deepseek_v3_yarn"};

// The first values as the numpy reader prints them (Python floats and ints), from our view. The
// fixtures hold f32, f64 and i64 tensors.
Json first_values(const TensorView& v, size_t count) {
  Json out = Json::array();
  const size_t numel = v.nbytes / dtype_size(v.dtype);
  std::vector<float> f32(v.dtype == MOE_DTYPE_F32 ? numel : 0);
  if (v.dtype == MOE_DTYPE_F32) read_as_f32(v, f32);
  for (size_t i = 0; i < std::min(count, numel); ++i) {
    const auto* p = static_cast<const uint8_t*>(v.data) + i * dtype_size(v.dtype);
    if (v.dtype == MOE_DTYPE_I64) {
      int64_t x;
      std::memcpy(&x, p, 8);
      out.push_back(x);
    } else if (v.dtype == MOE_DTYPE_F64) {
      double x;
      std::memcpy(&x, p, 8);
      out.push_back(x);
    } else {
      out.push_back(static_cast<double>(f32[i]));
    }
  }
  return out;
}

void expect_file_matches_numpy(const std::string& path, const Json& view) {
  auto f = SafetensorsFile::open(path);
  const Json& tensors = view["tensors"];
  ASSERT_EQ(tensors.size(), f->names().size()) << path;
  EXPECT_EQ((view["metadata"].get<std::map<std::string, std::string>>()), f->metadata()) << path;
  for (const Json& t : tensors) {
    const std::string name = t["name"].get<std::string>();
    const TensorView* v = f->find(name);
    ASSERT_NE(v, nullptr) << path << ": " << name;
    EXPECT_EQ(t["dtype"].get<std::string>(), safetensors_dtype_of(v->dtype)->name) << name;
    EXPECT_EQ(t["shape"].get<Shape>(), v->shape) << name;
    EXPECT_EQ(t["checksum"].get<uint64_t>(), test::checksum(v->data, v->nbytes)) << name;
    EXPECT_EQ(t["first"], first_values(*v, 4)) << name;
  }
}

TEST(ReferenceFixtures, EveryFileAgreesWithTheNumpyReader) {
  std::vector<std::string> paths;
  for (const char* fixture : kFixtures)
    for (const auto& entry : std::filesystem::directory_iterator(test::reference_dir(fixture)))
      if (entry.path().extension() == ".safetensors") paths.push_back(entry.path().string());
  ASSERT_GE(paths.size(), 22u);
  auto views = test::numpy_read(paths);
  if (!views) GTEST_SKIP() << "no python3 with numpy was found when the build was configured";
  for (const auto& path : paths) expect_file_matches_numpy(path, (*views)[path]);
}

TEST(ReferenceFixtures, EveryCheckpointOpensAndItsTensorsRead) {
  for (const char* fixture : kFixtures) {
    Checkpoint ck = Checkpoint::open(test::reference_dir(fixture));
    EXPECT_FALSE(ck.names().empty()) << fixture;
    EXPECT_EQ(ck.weights_source(), std::string(fixture) == "mixtral_sharded" ? "model.safetensors.index.json"
                                                                              : "model.safetensors");
    for (const std::string& name : ck.names()) {
      const TensorView& t = ck.tensor(name);
      ASSERT_EQ(t.dtype, MOE_DTYPE_F32) << name;
      std::vector<float> values(static_cast<size_t>(shape_numel(t.shape)));
      ck.read_f32(name, values);
    }
  }
}

TEST(ReferenceFixtures, MixtralShapesFollowItsConfig) {
  Checkpoint ck = Checkpoint::open(test::reference_dir("mixtral"));
  const ConfigReader& c = ck.config();
  const int64_t hidden = c.get_positive_int("hidden_size"), vocab = c.get_positive_int("vocab_size");
  const int64_t heads = c.get_positive_int("num_attention_heads"), kv = c.get_positive_int("num_key_value_heads");
  const int64_t head_dim = hidden / heads;
  ck.expect_shape(ck.tensor("model.embed_tokens.weight"), {vocab, hidden});
  ck.expect_shape(ck.tensor("lm_head.weight"), {vocab, hidden});
  for (int64_t layer = 0; layer < c.get_positive_int("num_hidden_layers"); ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    ck.expect_shape(ck.tensor(p + "self_attn.q_proj.weight"), {heads * head_dim, hidden});
    ck.expect_shape(ck.tensor(p + "self_attn.k_proj.weight"), {kv * head_dim, hidden});
    ck.expect_shape(ck.tensor(p + "input_layernorm.weight"), {hidden});
  }
}

TEST(ReferenceFixtures, ShardedIndexListsEveryTensorOnce) {
  const std::string dir = test::reference_dir("mixtral_sharded");
  Checkpoint ck = Checkpoint::open(dir);
  ConfigReader index = ConfigReader::from_file(dir + "/model.safetensors.index.json");
  EXPECT_EQ(ck.names(), index.object("weight_map").keys());
  // Every shard's tensors are all in the index: nothing was dropped.
  size_t in_shards = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with("model-")) in_shards += SafetensorsFile::open(entry.path().string())->names().size();
  }
  EXPECT_EQ(in_shards, ck.names().size());
}

}  // namespace
}  // namespace moe::io
