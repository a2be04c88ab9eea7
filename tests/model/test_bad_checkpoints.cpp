// Bad checkpoints through moe_model_load: each is a clear status with a message naming the file and
// the tensor or key at fault, and nothing crashes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "moe/moe.h"
#include "reference_fixture.h"

namespace fs = std::filesystem;

namespace moe_test {
namespace {

class BadCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("moe_bad_ckpt_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::path src = fs::path(MOE_REFERENCE_DIR) / "mixtral";
    fs::copy_file(src / "config.json", dir_ / "config.json");
    fs::copy_file(src / "model.safetensors", dir_ / "model.safetensors");
    ctx_.emplace(test_context());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads dir_ and returns the status; message_ holds the error message.
  moe_status load() {
    moe_model* m = nullptr;
    moe_status s = moe_model_load(ctx_->get(), dir_.c_str(), nullptr, &m);
    message_ = moe_last_error_message();
    moe_model_free(m);
    return s;
  }

  std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void write(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  void edit_config(const std::string& from, const std::string& to) {
    std::string c = read(dir_ / "config.json");
    auto at = c.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    c.replace(at, from.size(), to);
    write(dir_ / "config.json", c);
  }
  // A safetensors file from a header JSON and a data section.
  void write_safetensors(const std::string& header, const std::string& data) {
    std::string bytes(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
    write(dir_ / "model.safetensors", bytes + header + data);
  }
  // Rewrites one tensor's header entry (dtype/shape/offsets) in the real fixture file.
  void edit_header(const std::string& from, const std::string& to) {
    std::string bytes = read(dir_ / "model.safetensors");
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    std::string header = bytes.substr(8, n), data = bytes.substr(8 + n);
    auto at = header.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    header.replace(at, from.size(), to);
    write_safetensors(header, data);
  }

  fs::path dir_;
  std::optional<moe::context> ctx_;  // optional: a default moe::context would start a real one
  std::string message_;
};

TEST_F(BadCheckpoint, MissingConfig) {
  fs::remove(dir_ / "config.json");
  EXPECT_EQ(load(), MOE_ERR_NOT_FOUND);
  EXPECT_NE(message_.find("config.json"), std::string::npos) << message_;
  EXPECT_NE(message_.find(dir_.string()), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, MalformedConfigJson) {
  edit_config("\"hidden_size\": 64,", "\"hidden_size\": 64,,");
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("config.json"), std::string::npos) << message_;
  EXPECT_NE(message_.find("line"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, UnknownModelType) {
  edit_config("\"model_type\": \"mixtral\"", "\"model_type\": \"llama_moe_x\"");
  EXPECT_EQ(load(), MOE_ERR_UNSUPPORTED);
  EXPECT_NE(message_.find("model_type"), std::string::npos) << message_;
  EXPECT_NE(message_.find("llama_moe_x"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, MissingConfigKey) {
  edit_config("\"hidden_size\": 64,", "");
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("hidden_size"), std::string::npos) << message_;
  EXPECT_NE(message_.find("config.json"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, WrongTypeConfigKey) {
  edit_config("\"num_local_experts\": 8,", "\"num_local_experts\": \"eight\",");
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("num_local_experts"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, MissingTensor) {
  edit_header("\"model.norm.weight\"", "\"model.norm.weight_renamed\"");
  EXPECT_EQ(load(), MOE_ERR_NOT_FOUND);
  EXPECT_NE(message_.find("model.norm.weight"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, MisShapedTensor) {
  // The final norm claimed as [8, 8] instead of [64]: same bytes, wrong shape.
  edit_header("\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64]",
              "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[8,8]");
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.norm.weight"), std::string::npos) << message_;
  EXPECT_NE(message_.find("model.safetensors"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, TruncatedFile) {
  std::string bytes = read(dir_ / "model.safetensors");
  write(dir_ / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.safetensors"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, TruncatedHeader) {
  std::string bytes = read(dir_ / "model.safetensors");
  write(dir_ / "model.safetensors", bytes.substr(0, 100));
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.safetensors"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, OffsetsOutsideTheFile) {
  write_safetensors("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,1000000]}}",
                    std::string(256, '\0'));
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.norm.weight"), std::string::npos) << message_;
  EXPECT_NE(message_.find("model.safetensors"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, SizesThatOverflow) {
  write_safetensors(
      "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,256]}}",
      std::string(256, '\0'));
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.norm.weight"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, HeaderLengthBeyondTheFile) {
  std::string bytes(8, '\0');
  bytes[5] = 1;  // 2^40 bytes of header
  write(dir_ / "model.safetensors", bytes + "{}");
  EXPECT_EQ(load(), MOE_ERR_FORMAT);
  EXPECT_NE(message_.find("model.safetensors"), std::string::npos) << message_;
}

TEST_F(BadCheckpoint, NotADirectory) {
  moe_model* m = nullptr;
  EXPECT_NE(moe_model_load(ctx_->get(), (dir_ / "nothing_here").c_str(), nullptr, &m), MOE_OK);
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(std::string(moe_last_error_message()).find("nothing_here"), std::string::npos);
}

}  // namespace
}  // namespace moe_test
