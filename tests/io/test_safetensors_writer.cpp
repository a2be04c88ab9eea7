// The safetensors writer: round trips, the exact layout of the format's own writer (byte for byte
// against files the Python library wrote), the numpy reader's view of our files, and atomic,
// clean failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <filesystem>

#include "base/dtype.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/safetensors_dtype.h"
#include "io/safetensors_writer.h"
#include "io_test_util.h"

namespace moe::io {
namespace {

using test::fails_with;

// Host data for one tensor of each SDK dtype, with recognisable contents.
struct Sample {
  std::string name;
  moe_dtype dtype;
  Shape shape;
  std::string bytes;
};

std::vector<Sample> samples() {
  return {
      {"f32", MOE_DTYPE_F32, {2, 3}, test::pattern_bytes(24)},
      {"bf16", MOE_DTYPE_BF16, {5}, test::pattern_bytes(10)},
      {"f16", MOE_DTYPE_F16, {1, 1, 3}, test::pattern_bytes(6)},
      {"f64", MOE_DTYPE_F64, {2}, test::pattern_bytes(16)},
      {"i64", MOE_DTYPE_I64, {}, test::pattern_bytes(8)},
      {"i32", MOE_DTYPE_I32, {3}, test::pattern_bytes(12)},
      {"i8", MOE_DTYPE_I8, {7}, test::pattern_bytes(7)},
      {"u8", MOE_DTYPE_U8, {0, 4}, ""},
      {"a.weight", MOE_DTYPE_F32, {1}, test::pattern_bytes(4)},
  };
}

std::vector<TensorToWrite> to_write(const std::vector<Sample>& s) {
  std::vector<TensorToWrite> out;
  for (const auto& t : s) out.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
  return out;
}

bool has_temp_files(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

TEST(SafetensorsWriter, RoundTripsEveryDtype) {
  test::TempDir dir;
  const std::string path = dir / "all.safetensors";
  const auto s = samples();
  write_safetensors(path, to_write(s), {{"format", "pt"}, {"note", "quote \" and \\ and \n"}});

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "quote \" and \\ and \n"}}));
  EXPECT_EQ(f->names().size(), s.size());
  for (const auto& t : s) {
    const TensorView* v = f->find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->dtype, t.dtype) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    ASSERT_EQ(v->nbytes, t.bytes.size()) << t.name;
    EXPECT_EQ(std::memcmp(v->data, t.bytes.data(), v->nbytes), 0) << t.name;
  }
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(SafetensorsWriter, LayoutIsTheFormatWritersLayout) {
  test::TempDir dir;
  const std::string path = dir / "layout.safetensors";
  write_safetensors(path, to_write(samples()));
  const std::string bytes = test::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header padded to 8 bytes";
  EXPECT_EQ(bytes.substr(8, 14), "{\"i64\":{\"dtype");  // no metadata: the widest dtype comes first

  // Data in descending alignment order, then by name; each tensor aligned to its element size.
  auto f = SafetensorsFile::open(path);
  std::vector<std::string> order{"i64", "f64", "a.weight", "f32", "i32", "bf16", "f16", "i8", "u8"};
  const uint8_t* previous = nullptr;
  for (const auto& name : order) {
    const TensorView* v = f->find(name);
    auto address = reinterpret_cast<uintptr_t>(v->data);
    EXPECT_EQ(address % dtype_size(v->dtype), 0u) << name;
    if (previous) {
      EXPECT_GE(static_cast<const uint8_t*>(v->data), previous) << name;
    }
    previous = static_cast<const uint8_t*>(v->data) + v->nbytes;
  }
}

// The fixtures were written by the Python safetensors library: writing their tensors again must
// give the same bytes.
TEST(SafetensorsWriter, ReproducesFilesOfThePythonLibraryByteForByte) {
  test::TempDir dir;
  for (const char* fixture : {"mixtral/reference.safetensors", "mixtral/model.safetensors",
                              "deepseek_v3/reference.safetensors", "mixtral_sharded/model-00002-of-00014.safetensors"}) {
    const std::string original = test::reference_dir(fixture);
    auto f = SafetensorsFile::open(original);
    std::vector<TensorToWrite> tensors;
    for (const auto& name : f->names()) {
      const TensorView* v = f->find(name);
      tensors.push_back({v->name, v->dtype, v->shape, v->data});
    }
    const std::string copy = dir / "copy.safetensors";
    write_safetensors(copy, tensors, f->metadata());
    EXPECT_TRUE(test::read_file(copy) == test::read_file(original)) << fixture;
  }
}

TEST(SafetensorsWriter, NumpyReaderAgrees) {
  test::TempDir dir;
  const std::string path = dir / "np.safetensors";
  const auto s = samples();
  write_safetensors(path, to_write(s), {{"format", "pt"}});
  auto views = test::numpy_read({path});
  if (!views) GTEST_SKIP() << "no python3 with numpy was found when the build was configured";
  const Json& view = (*views)[path];
  EXPECT_EQ(view["metadata"], Json({{"format", "pt"}}));
  ASSERT_EQ(view["tensors"].size(), s.size());
  auto f = SafetensorsFile::open(path);
  for (const Json& t : view["tensors"]) {
    const TensorView* v = f->find(t["name"].get<std::string>());
    ASSERT_NE(v, nullptr) << t["name"];
    EXPECT_EQ(t["shape"].get<Shape>(), v->shape);
    EXPECT_EQ(t["dtype"].get<std::string>(), safetensors_dtype_of(v->dtype)->name);
    EXPECT_EQ(t["checksum"].get<uint64_t>(), test::checksum(v->data, v->nbytes)) << t["name"];
  }
}

TEST(SafetensorsWriter, BadArgumentsNameTheTensorAndWriteNothing) {
  test::TempDir dir;
  const std::string path = dir / "bad.safetensors";
  float x = 1.0f;
  auto expect_bad = [&](std::vector<TensorToWrite> tensors, const std::vector<std::string>& parts) {
    EXPECT_TRUE(fails_with([&] { write_safetensors(path, tensors); }, MOE_ERR_INVALID_ARGUMENT, parts));
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(has_temp_files(dir.path()));
  };
  expect_bad({{"a", MOE_DTYPE_F32, {1}, &x}, {"a", MOE_DTYPE_F32, {1}, &x}}, {path, "tensor 'a'", "twice"});
  expect_bad({{"__metadata__", MOE_DTYPE_F32, {1}, &x}}, {path, "'__metadata__'", "reserved"});
  expect_bad({{"d", 0, {1}, &x}}, {path, "tensor 'd'", "unknown dtype 0"});
  expect_bad({{"d", 99, {1}, &x}}, {path, "tensor 'd'", "unknown dtype 99"});
  expect_bad({{"n", MOE_DTYPE_F32, {2, -1}, &x}}, {path, "tensor 'n'", "negative", "[2, -1]"});
  expect_bad({{"o", MOE_DTYPE_F32, {INT64_MAX, 4}, &x}}, {path, "tensor 'o'", "overflows"});
  expect_bad({{"z", MOE_DTYPE_F32, {2}, nullptr}}, {path, "tensor 'z'", "no data"});
  expect_bad({{"bad\xff", MOE_DTYPE_F32, {1}, &x}}, {path, "UTF-8"});
}

TEST(SafetensorsWriter, UnwritableDirectoryIsAnIoErrorNamingThePath) {
  test::TempDir dir;
  float x = 1.0f;
  const std::string path = dir / "missing/sub/w.safetensors";
  EXPECT_TRUE(fails_with([&] { write_safetensors(path, {{"x", MOE_DTYPE_F32, {1}, &x}}); }, MOE_ERR_IO,
                         {path, "No such file or directory"}));
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(SafetensorsWriter, FailedRenameRemovesTheTemporaryFile) {
  test::TempDir dir;
  float x = 1.0f;
  // The target is a non-empty directory: everything is written, then the rename fails.
  const std::string path = dir / "target";
  std::filesystem::create_directories(path + "/child");
  EXPECT_TRUE(fails_with([&] { write_safetensors(path, {{"x", MOE_DTYPE_F32, {1}, &x}}); }, MOE_ERR_IO,
                         {path, "rename"}));
  EXPECT_FALSE(has_temp_files(dir.path()));
}

// A full disk, simulated by a file size limit: the write fails, the temporary file goes, and the
// previous file at the path is untouched (the write is atomic).
TEST(SafetensorsWriter, WriteFailureLeavesThePreviousFileIntact) {
  test::TempDir dir;
  const std::string path = dir / "model.safetensors";
  float small = 3.0f;
  write_safetensors(path, {{"old", MOE_DTYPE_F32, {1}, &small}});
  const std::string before = test::read_file(path);

  std::vector<float> big(1 << 16, 1.0f);
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  auto result = fails_with(
      [&] { write_safetensors(path, {{"big", MOE_DTYPE_F32, {static_cast<int64_t>(big.size())}, big.data()}}); },
      MOE_ERR_IO, {path, "write"});
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(result);
  EXPECT_EQ(test::read_file(path), before);
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(SafetensorsWriter, OverwritesAnExistingFile) {
  test::TempDir dir;
  const std::string path = dir / "w.safetensors";
  float a = 1.0f, b[2] = {2.0f, 3.0f};
  write_safetensors(path, {{"a", MOE_DTYPE_F32, {1}, &a}});
  write_safetensors(path, {{"b", MOE_DTYPE_F32, {2}, b}});
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->names(), std::vector<std::string>{"b"});
}

// Rewriting a file from its own mapping is safe: the new file is a different inode until the
// rename, and the old mapping stays valid after it.
TEST(SafetensorsWriter, RewritesAFileFromItsOwnMapping) {
  test::TempDir dir;
  const std::string path = dir / "w.safetensors";
  const auto s = samples();
  write_safetensors(path, to_write(s));
  auto f = SafetensorsFile::open(path);
  std::vector<TensorToWrite> again;
  for (const auto& name : f->names()) {
    const TensorView* v = f->find(name);
    again.push_back({v->name, v->dtype, v->shape, v->data});
  }
  const std::string before = test::read_file(path);
  write_safetensors(path, again, {{"format", "pt"}});
  EXPECT_EQ(f->find("f32")->nbytes, 24u);  // the old mapping still reads
  auto g = SafetensorsFile::open(path);
  EXPECT_EQ(g->metadata().at("format"), "pt");
  for (const auto& t : s) EXPECT_EQ(std::memcmp(g->find(t.name)->data, t.bytes.data(), t.bytes.size()), 0) << t.name;
  EXPECT_NE(test::read_file(path), before);
}

TEST(AtomicFile, WritesTextAndCleansUpOnFailure) {
  test::TempDir dir;
  write_file_atomic(dir / "config.json", "{\"a\": 1}\n");
  EXPECT_EQ(test::read_file(dir / "config.json"), "{\"a\": 1}\n");
  EXPECT_TRUE(fails_with([&] { write_file_atomic(dir / "no/config.json", "x"); }, MOE_ERR_IO, {dir / "no/config.json"}));
  {
    AtomicFile abandoned(dir / "abandoned.json");
    abandoned.write("partial", 7);
  }  // never committed: nothing is left behind
  EXPECT_FALSE(std::filesystem::exists(dir / "abandoned.json"));
  EXPECT_FALSE(has_temp_files(dir.path()));
}

}  // namespace
}  // namespace moe::io
