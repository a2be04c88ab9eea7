// argmax_rows (plugin ABI 1.3): each row's first index of its largest value, NaN never chosen, against
// a plain reference loop and against the host's moe::argmax (greedy decoding takes the token on either
// side and must get the same one). Rows short and long (not multiples of any block size), ties across
// threads and warps, NaN and infinities, argument errors, and a recorded op replayed on new values.
// Backends without the entry skip.
#include <cmath>
#include <cstddef>
#include <limits>

#include "backend_fixture.h"
#include "model/sampler.h"
#include "tensor/ops.h"

namespace moe::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The contract spelled out: skip NaN; keep the first of the largest values; 0 when nothing is left.
int32_t reference_argmax(const float* row, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(row[i])) continue;
    if (best < 0 || row[i] > row[best]) best = i;
  }
  return static_cast<int32_t>(best < 0 ? 0 : best);
}

class ArgmaxTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!be().has_argmax_rows())
      GTEST_SKIP() << "backend '" << be().name() << "' has no argmax_rows (plugin ABI 1.3)";
  }

  // Runs the op on `values` [rows, n] (output poisoned first, so an unwritten row shows) and checks every
  // row against the reference and the host's argmax.
  void expect_rows(const std::vector<float>& values, int64_t rows, int64_t n) {
    Tensor x = upload_f32(values, {rows, n});
    Tensor out = poisoned(MOE_DTYPE_I32, {rows});
    ops::argmax_rows(x, out);
    const std::vector<int32_t> got = out.to_vector<int32_t>();
    ASSERT_EQ(got.size(), static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = values.data() + r * n;
      EXPECT_EQ(got[r], reference_argmax(row, n)) << "row " << r << " of [" << rows << ", " << n << "]";
      EXPECT_EQ(got[r], moe::argmax(row, n)) << "host argmax, row " << r << " of [" << rows << ", " << n << "]";
    }
  }

  // The op called through the table, for arguments the core's wrapper would reject before the backend.
  void call_raw(const Tensor& x, const Tensor& out) {
    moe_tensor xr = x.ref(), orf = out.ref();
    be().check(be().ops().argmax_rows(be().handle(), &xr, &orf), "argmax_rows");
  }
};
MOE_INSTANTIATE_FOR_BACKENDS(ArgmaxTest);

// Random rows whose largest value sits at the first, a middle or the last index (the tail of a length
// that is no multiple of a block's threads must be scanned), including rows of one value.
TEST_P(ArgmaxTest, RowsOfVariousLengths) {
  for (int64_t n : {1, 7, 32000, 100003}) {
    const int64_t rows = n > 50000 ? 3 : 5;
    SCOPED_TRACE(::testing::Message() << "n " << n);
    std::vector<float> x = random_floats(static_cast<size_t>(rows * n), static_cast<uint32_t>(n), -4.f, 4.f);
    const int64_t at[5] = {0, n - 1, n / 2, n / 3, n - 2 > 0 ? n - 2 : 0};
    for (int64_t r = 0; r < rows; ++r) x[r * n + at[r]] = 10.f + static_cast<float>(r);
    expect_rows(x, rows, n);
  }
}

TEST_P(ArgmaxTest, TiesGiveTheFirstIndex) {
  const int64_t n = 32000;
  std::vector<float> x = random_floats(4 * n, 3, -1.f, 1.f);
  // Row 0: ties in one thread's columns and across warps; row 1: index 1023 against 1024 (the last
  // thread's first value against the first thread's second, for a block of 1024); row 2: the tie at the
  // row's last index and one before it; row 3: every value equal.
  for (int64_t i : {31999, 5000, 700, 33, 4}) x[i] = 7.f;
  for (int64_t i : {1024, 1023, 2047}) x[n + i] = 7.f;
  for (int64_t i : {n - 1, n - 2}) x[2 * n + i] = 7.f;
  for (int64_t i = 0; i < n; ++i) x[3 * n + i] = -2.5f;
  expect_rows(x, 4, n);
  EXPECT_EQ(reference_argmax(x.data(), n), 4);
  EXPECT_EQ(reference_argmax(x.data() + n, n), 1023);
}

TEST_P(ArgmaxTest, NanIsNeverChosenAndInfinitiesAreValues) {
  const int64_t n = 3000;
  std::vector<float> x(static_cast<size_t>(7 * n));
  auto row = [&](int64_t r) { return x.data() + r * n; };
  std::vector<float> base = random_floats(static_cast<size_t>(n), 9, -1.f, 1.f);
  for (int64_t r = 0; r < 7; ++r) std::copy(base.begin(), base.end(), row(r));
  // 0: NaN first, at every 7th index and past the largest value.
  row(0)[0] = kNaN;
  for (int64_t i = 0; i < n; i += 7) row(0)[i] = kNaN;
  row(0)[1500] = 3.f;
  row(0)[1501] = kNaN;
  // 1: only NaN gives 0.
  std::fill(row(1), row(1) + n, kNaN);
  // 2: NaN and -inf: the first -inf.
  std::fill(row(2), row(2) + n, kNaN);
  row(2)[2999] = -kInf;
  row(2)[1234] = -kInf;
  // 3: every value -inf gives 0.
  std::fill(row(3), row(3) + n, -kInf);
  // 4: +inf beats everything, NaN next to it.
  row(4)[2000] = kInf;
  row(4)[1999] = kNaN;
  row(4)[2500] = kInf;
  // 5: only the last value is not NaN.
  std::fill(row(5), row(5) + n, kNaN);
  row(5)[n - 1] = -7.f;
  // 6: a NaN in every warp's first column and -inf elsewhere mixed with the ordinary values.
  for (int64_t i = 0; i < n; i += 32) row(6)[i] = kNaN;
  for (int64_t i = 5; i < n; i += 11) row(6)[i] = -kInf;
  expect_rows(x, 7, n);
  EXPECT_EQ(reference_argmax(row(1), n), 0);
  EXPECT_EQ(reference_argmax(row(2), n), 1234);
  EXPECT_EQ(reference_argmax(row(4), n), 2000);
  EXPECT_EQ(reference_argmax(row(5), n), n - 1);
}

TEST_P(ArgmaxTest, NoRowsGiveAnEmptyResult) {
  Tensor out = ops::argmax_rows(Tensor::empty(be(), MOE_DTYPE_F32, {0, 5}));
  EXPECT_EQ(out.numel(), 0);
}

TEST_P(ArgmaxTest, BadArgumentsNameWhatIsWrong) {
  Tensor x = upload_f32(random_floats(12, 4), {3, 4});
  Tensor out = poisoned(MOE_DTYPE_I32, {3});
  EXPECT_TRUE(fails_with([&] { call_raw(upload_bf16(round_to_bf16(random_floats(12, 5)), {3, 4}), out); },
                         MOE_ERR_UNSUPPORTED, {"argmax_rows", "x", "bf16"}));
  EXPECT_TRUE(fails_with([&] { call_raw(x, poisoned(MOE_DTYPE_F32, {3})); }, MOE_ERR_UNSUPPORTED,
                         {"argmax_rows", "out", "f32"}));
  EXPECT_TRUE(fails_with([&] { call_raw(upload_f32(random_floats(12, 6), {12}), out); }, MOE_ERR_INVALID_ARGUMENT,
                         {"argmax_rows", "x"}));
  EXPECT_TRUE(fails_with([&] { call_raw(x, poisoned(MOE_DTYPE_I32, {4})); }, MOE_ERR_INVALID_ARGUMENT,
                         {"argmax_rows", "out [4]", "[3, 4]"}));
  EXPECT_TRUE(fails_with([&] { call_raw(Tensor::empty(be(), MOE_DTYPE_F32, {3, 0}), out); }, MOE_ERR_INVALID_ARGUMENT,
                         {"argmax_rows", "x [3, 0]", "no values"}));
  // The core's wrapper refuses the same before the backend sees it.
  EXPECT_TRUE(fails_with([&] { ops::argmax_rows(upload_f32(random_floats(12, 7), {12})); }, MOE_ERR_INTERNAL,
                         {"argmax_rows", "x"}));
}

// Recorded like any math op: replays read what x holds at the time.
TEST_P(ArgmaxTest, RecordedOpReplaysOnNewValues) {
  if (!be().can_record()) GTEST_SKIP() << "backend '" << be().name() << "' cannot record steps";
  const int64_t rows = 3, n = 32000;
  Tensor x = upload_f32(std::vector<float>(static_cast<size_t>(rows * n), 0.f), {rows, n});
  Tensor out = poisoned(MOE_DTYPE_I32, {rows});
  moe_tensor xr = x.ref(), orf = out.ref();
  be().check(be().ops().record_begin(be().handle()), "record_begin");
  const moe_status recorded = be().ops().argmax_rows(be().handle(), &xr, &orf);
  moe_recorded_step* step = nullptr;
  be().check(be().ops().record_end(be().handle(), &step), "record_end");
  be().check(recorded, "argmax_rows");
  for (uint32_t round = 0; round < 2; ++round) {
    SCOPED_TRACE(::testing::Message() << "replay " << round);
    std::vector<float> values = random_floats(static_cast<size_t>(rows * n), 30 + round);
    values[static_cast<size_t>(round * 1000 + 17)] = 5.f;
    values[static_cast<size_t>(n + n - 1 - round)] = kNaN;
    values[static_cast<size_t>(2 * n + 100 + round)] = 5.f;
    values[static_cast<size_t>(2 * n + 31000)] = 5.f;
    x.copy_from_host(values.data(), values.size() * sizeof(float));
    be().check(be().ops().replay_step(be().handle(), step), "replay_step");
    const std::vector<int32_t> got = out.to_vector<int32_t>();
    for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(got[r], reference_argmax(values.data() + r * n, n)) << "row " << r;
  }
  be().ops().destroy_step(be().handle(), step);
}

}  // namespace
}  // namespace moe::testing
