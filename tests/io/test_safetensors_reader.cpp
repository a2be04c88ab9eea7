// The safetensors reader on hand-made files: valid ones read right, and every malformed one is an
// error naming the file and the tensor at fault, never a crash or an out-of-bounds view.
#include <gtest/gtest.h>

#include <cstring>

#include "io/safetensors.h"
#include "io/tensor_convert.h"
#include "io_test_util.h"

namespace moe::io {
namespace {

using test::fails_with;
using test::safetensors_image;

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

class SafetensorsReader : public ::testing::Test {
 protected:
  // Writes `image` to a file in the scratch directory and returns its path.
  std::string file(const std::string& image, const std::string& name = "t.safetensors") {
    const std::string path = dir_ / name;
    test::write_file(path, image);
    return path;
  }
  // Opens a file holding one tensor entry `entry` (JSON text) and `data`; expects failure.
  ::testing::AssertionResult one_tensor_fails(const std::string& entry, const std::string& data, moe_status status,
                                              const std::vector<std::string>& parts) {
    const std::string path = file(safetensors_image("{\"w\":" + entry + "}", data));
    std::vector<std::string> all{path, "tensor 'w'"};
    all.insert(all.end(), parts.begin(), parts.end());
    return fails_with([&] { SafetensorsFile::open(path); }, status, all);
  }

  test::TempDir dir_;
};

TEST_F(SafetensorsReader, ReadsAHandMadeFile) {
  // Keys out of data order, an unpadded header (so the data is not aligned), and metadata.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
      R"("__metadata__":{"format":"pt","k":"v"}})";
  int64_t i = -42;
  std::string data = f32_bytes({1.5f, -2.0f}) + std::string(reinterpret_cast<const char*>(&i), 8);
  const std::string path = file(safetensors_image(header, data));

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"k", "v"}}));
  const TensorView* b = f->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "b");
  EXPECT_EQ(b->dtype, MOE_DTYPE_F32);
  EXPECT_EQ(b->shape, (Shape{2}));
  EXPECT_EQ(b->nbytes, 8u);
  EXPECT_EQ(b->file, path);
  std::vector<float> values(2);
  read_as_f32(*b, values);
  EXPECT_EQ(values, (std::vector<float>{1.5f, -2.0f}));
  const TensorView* a = f->find("a");
  ASSERT_NE(a, nullptr);
  int64_t got;
  std::memcpy(&got, a->data, 8);
  EXPECT_EQ(got, -42);
  EXPECT_EQ(f->find("c"), nullptr);
  EXPECT_FALSE(f->contains("c"));
}

TEST_F(SafetensorsReader, ScalarsEmptyTensorsAndEmptyFiles) {
  const std::string header =
      R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4]}})";
  auto f = SafetensorsFile::open(file(safetensors_image(header, f32_bytes({3.0f}))));
  EXPECT_EQ(f->find("s")->shape, Shape{});
  EXPECT_EQ(f->find("s")->nbytes, 4u);
  EXPECT_EQ(f->find("e")->shape, (Shape{0, 3}));
  EXPECT_EQ(f->find("e")->nbytes, 0u);

  auto empty = SafetensorsFile::open(file(safetensors_image("{}      ", ""), "empty.safetensors"));
  EXPECT_TRUE(empty->names().empty());
  EXPECT_TRUE(empty->metadata().empty());
}

TEST_F(SafetensorsReader, NullMetadataIsAccepted) {
  auto f = SafetensorsFile::open(file(safetensors_image(R"({"__metadata__":null})", "")));
  EXPECT_TRUE(f->metadata().empty());
}

TEST_F(SafetensorsReader, ParsesAnImageInMemory) {
  const std::string image = safetensors_image(R"({"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", "abc");
  auto f = SafetensorsFile::parse(image.data(), image.size(), "<memory>");
  ASSERT_NE(f->find("x"), nullptr);
  EXPECT_EQ(f->find("x")->data, image.data() + image.size() - 3);
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::parse(image.data(), 5, "<memory>"); }, MOE_ERR_FORMAT, {"<memory>"}));
}

TEST_F(SafetensorsReader, DtypesWithoutAnSdkTypeOpenButCannotBeRead) {
  const std::string header =
      R"({"mask":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]},"q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[2,4]},)"
      R"("u":{"dtype":"U16","shape":[1],"data_offsets":[4,6]},"f4":{"dtype":"F4","shape":[4],"data_offsets":[6,8]}})";
  const std::string path = file(safetensors_image(header, "12345678"));
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"f4", "mask", "q", "u"}));
  EXPECT_TRUE(f->contains("q"));
  EXPECT_TRUE(fails_with([&] { f->find("q"); }, MOE_ERR_UNSUPPORTED, {path, "tensor 'q'", "F8_E4M3"}));
  EXPECT_TRUE(fails_with([&] { f->find("mask"); }, MOE_ERR_UNSUPPORTED, {path, "tensor 'mask'", "BOOL"}));
}

TEST_F(SafetensorsReader, UnknownDtypeIsUnsupported) {
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]})", "12", MOE_ERR_UNSUPPORTED,
                               {"Q4_K"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":7,"shape":[2],"data_offsets":[0,2]})", "12", MOE_ERR_FORMAT, {"dtype"}));
}

TEST_F(SafetensorsReader, SubByteDtypesMustFillWholeBytes) {
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})", "12", MOE_ERR_FORMAT,
                               {"whole bytes"}));
}

TEST_F(SafetensorsReader, MissingFileAndDirectory) {
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(dir_ / "no.safetensors"); }, MOE_ERR_NOT_FOUND,
                         {dir_ / "no.safetensors"}));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(dir_.path()); }, MOE_ERR_IO, {dir_.path()}));
}

TEST_F(SafetensorsReader, FileShorterThanTheLengthField) {
  const std::string path = file("\x10\0\0", "short.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT, {path, "too short", "truncated"}));
  const std::string empty = file("", "zero.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(empty); }, MOE_ERR_FORMAT, {empty, "0 bytes"}));
}

TEST_F(SafetensorsReader, HeaderCutShort) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string whole = safetensors_image(header, f32_bytes({1.0f}));
  const std::string path = file(whole.substr(0, 8 + header.size() / 2));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT,
                         {path, "header length " + std::to_string(header.size()), "past the end", "truncated"}));
}

TEST_F(SafetensorsReader, DataCutShort) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  const std::string path = file(safetensors_image(header, test::pattern_bytes(24)).substr(0, 8 + header.size() + 20));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT,
                         {path, "tensor 'b'", "[8, 24]", "outside the data section of 20 bytes", "truncated"}));
}

TEST_F(SafetensorsReader, HeaderLengthLargerThanTheFile) {
  const std::string header = R"({})";
  const std::string path = file(safetensors_image(header, "", uint64_t{1} << 20));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT, {path, "1048576", "past the end"}));
  const std::string huge = file(safetensors_image(header, "", uint64_t{1} << 60), "huge.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(huge); }, MOE_ERR_FORMAT,
                         {huge, std::to_string(uint64_t{1} << 60), "limit of 100000000"}));
  const std::string max = file(safetensors_image(header, "", UINT64_MAX), "max.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(max); }, MOE_ERR_FORMAT, {max, "limit"}));
}

TEST_F(SafetensorsReader, DataOffsetsOutsideTheFile) {
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"U8","shape":[1000],"data_offsets":[0,1000]})", "abcd", MOE_ERR_FORMAT,
                               {"[0, 1000]", "outside the data section of 4 bytes"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]})",
                               "abcd", MOE_ERR_FORMAT, {"outside the data section"}));
}

TEST_F(SafetensorsReader, OffsetsDisagreeingWithTheShape) {
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", test::pattern_bytes(12),
                               MOE_ERR_FORMAT, {"[0, 12]", "12 bytes", "[2, 2]", "needs 16"}));
}

TEST_F(SafetensorsReader, ShapesWhoseSizeOverflows) {
  // 2^32 * 2^32 elements, 2^62 * 4, and 2^61 f32 elements (2^66 bits): none fits 64 bits.
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})", "",
                               MOE_ERR_FORMAT, {"[4294967296, 4294967296]", "overflows"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"I8","shape":[4611686018427387904,4],"data_offsets":[0,0]})", "",
                               MOE_ERR_FORMAT, {"overflows"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,0]})", "",
                               MOE_ERR_FORMAT, {"overflows"}));
  // One dimension past int64 (a Shape entry) overflows even when another dimension is 0.
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]})", "",
                               MOE_ERR_FORMAT, {"overflows"}));
  // Products that fit in int64 but claim far more than the file holds are only a size mismatch.
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4]})", "abcd",
                               MOE_ERR_FORMAT, {"needs 4398046511104"}));
}

TEST_F(SafetensorsReader, NegativeOrNonIntegerShapeEntries) {
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[-1,4],"data_offsets":[0,0]})", "", MOE_ERR_FORMAT,
                               {"negative dimension -1"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,0]})", "", MOE_ERR_FORMAT,
                               {"shape dimension", "not a non-negative integer"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":["4"],"data_offsets":[0,16]})", test::pattern_bytes(16),
                               MOE_ERR_FORMAT, {"shape dimension"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})", test::pattern_bytes(16),
                               MOE_ERR_FORMAT, {"\"shape\"", "not a list"}));
}

TEST_F(SafetensorsReader, MalformedTensorEntries) {
  EXPECT_TRUE(one_tensor_fails(R"({"shape":[1],"data_offsets":[0,4]})", "abcd", MOE_ERR_FORMAT, {"no \"dtype\""}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","data_offsets":[0,4]})", "abcd", MOE_ERR_FORMAT, {"no \"shape\""}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[1]})", "abcd", MOE_ERR_FORMAT, {"no \"data_offsets\""}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", "abcd", MOE_ERR_FORMAT,
                               {"[begin, end]"}));
  EXPECT_TRUE(one_tensor_fails(R"({"dtype":"F32","shape":[1],"data_offsets":[0,-4]})", "abcd", MOE_ERR_FORMAT,
                               {"data offset"}));
  EXPECT_TRUE(one_tensor_fails(R"([1, 2])", "", MOE_ERR_FORMAT, {"JSON object"}));
}

TEST_F(SafetensorsReader, OffsetsMustTileTheDataSection) {
  const std::string path = file(safetensors_image(
      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
      "abcdef"));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT,
                         {path, "tensor 'b'", "[2, 6]", "overlapping tensor 'a'"}));
  const std::string gap = file(safetensors_image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "abcd"),
                               "gap.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(gap); }, MOE_ERR_FORMAT, {gap, "tensor 'a'", "gap after byte 0"}));
  const std::string backwards = file(
      safetensors_image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "abcd"), "back.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(backwards); }, MOE_ERR_FORMAT,
                         {backwards, "tensor 'a'", "end before they begin"}));
  const std::string trailing = file(
      safetensors_image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd"), "trail.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(trailing); }, MOE_ERR_FORMAT,
                         {trailing, "cover 2 bytes of a data section of 4"}));
}

TEST_F(SafetensorsReader, HeaderThatIsNotAnObject) {
  const std::string path = file(safetensors_image("[1, 2, 3]", ""));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT, {path, "not a JSON object"}));
  const std::string str = file(safetensors_image("\"abc\"", ""), "s.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(str); }, MOE_ERR_FORMAT, {str, "not a JSON object"}));
}

TEST_F(SafetensorsReader, MalformedHeaderJson) {
  const std::string path = file(safetensors_image(R"({"w":{"dtype":"F32",)", ""));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT, {path, "header", "malformed", "byte"}));
  // Bytes that are not UTF-8 inside a string.
  const std::string bad_utf8 = file(safetensors_image("{\"\xff\":{}}", ""), "utf8.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(bad_utf8); }, MOE_ERR_FORMAT, {bad_utf8, "malformed"}));
}

TEST_F(SafetensorsReader, BadMetadata) {
  const std::string path = file(safetensors_image(R"({"__metadata__":{"format":1}})", ""));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(path); }, MOE_ERR_FORMAT, {path, "'format'", "not a string"}));
  const std::string list = file(safetensors_image(R"({"__metadata__":["pt"]})", ""), "l.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(list); }, MOE_ERR_FORMAT, {list, "__metadata__"}));
}

TEST_F(SafetensorsReader, DeepOrWideHeadersHitLimitsBeforeTheyCostMemory) {
  const std::string deep = file(safetensors_image(R"({"w":{"x":{"y":[]}}})", ""));
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(deep); }, MOE_ERR_LIMIT, {deep, "3 levels"}));
  std::string dims = "1";
  for (int i = 0; i < 64; ++i) dims += ",1";
  const std::string wide = file(
      safetensors_image(R"({"w":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", "a"), "w.safetensors");
  EXPECT_TRUE(fails_with([&] { SafetensorsFile::open(wide); }, MOE_ERR_LIMIT, {wide, "longer than 64"}));
}

}  // namespace
}  // namespace moe::io
