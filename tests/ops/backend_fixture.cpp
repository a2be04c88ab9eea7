#include "backend_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>

#include "base/dtype.h"
#include "moe/moe.h"
#include "plugins/registry.h"

namespace moe::testing {
namespace {

// A backend under test: a plugin, and the environment its instance is created under.
struct Variant {
  std::string label;
  std::string plugin;
  const char* cpu_isa = nullptr;  // MOE_CPU_ISA while creating the instance
};

// $MOE_PLUGIN_DIR, else the plugin folder of the build tree this test was built in.
std::string plugin_dir() {
  const char* dir = std::getenv("MOE_PLUGIN_DIR");
  return dir && *dir ? dir : MOE_OPS_TEST_PLUGIN_DIR;
}

const std::vector<PluginRecord>& plugins() {
  static const std::vector<PluginRecord> records = [] {
    PluginSearch search;
    search.application_dirs.push_back(plugin_dir());
    search.use_environment = false;
    search.use_default_dir = false;
    return discover_plugins(search);
  }();
  return records;
}

std::vector<Variant> variants() {
  std::vector<Variant> v = {{"cpu", "cpu"}, {"cpu_avx2", "cpu", "avx2"}, {"cuda", "cuda"}};
  for (const auto& p : plugins()) {
    if (p.kind != MOE_PLUGIN_KIND_BACKEND || p.name.empty()) continue;
    if (std::none_of(v.begin(), v.end(), [&](const Variant& x) { return x.plugin == p.name; }))
      v.push_back({p.name, p.name});
  }
  return v;
}

// An instance of the plugin `descriptor` describes, created under MOE_CPU_ISA=cpu_isa where that is set.
std::unique_ptr<Backend> create_backend(const moe_plugin_descriptor* descriptor, const char* cpu_isa) {
  const char* previous = std::getenv("MOE_CPU_ISA");
  const std::string saved = previous ? previous : "";
  if (cpu_isa) setenv("MOE_CPU_ISA", cpu_isa, 1);
  struct Restore {
    const char* isa;
    const char* previous;
    const std::string& saved;
    ~Restore() {
      if (!isa) return;
      if (previous)
        setenv("MOE_CPU_ISA", saved.c_str(), 1);
      else
        unsetenv("MOE_CPU_ISA");
    }
  } restore{cpu_isa, previous, saved};
  moe_backend_options options{};
  options.struct_size = sizeof(options);
  return std::make_unique<Backend>(descriptor, options);
}

// One instance per variant for the whole test program (so oneDNN primitives are reused).
struct Instance {
  std::unique_ptr<Backend> backend;
  std::string skip_reason;  // set when the backend is absent or cannot run here
  std::string failure;      // set when it is present but broken
};

Instance make_instance(const Variant& variant) {
  Instance instance;
  const PluginRecord* record = nullptr;
  for (const auto& p : plugins())
    if (p.kind == MOE_PLUGIN_KIND_BACKEND && p.name == variant.plugin) record = &p;
  if (!record) {
    instance.skip_reason = "backend plugin '" + variant.plugin + "' (libmoe_backend_" + variant.plugin +
                           ".so) is not in " + plugin_dir();
    return instance;
  }
  if (record->state == MOE_PLUGIN_STATE_UNUSABLE) {
    instance.skip_reason = "backend plugin '" + variant.plugin + "' cannot run here: " + record->reason;
    return instance;
  }
  if (record->state != MOE_PLUGIN_STATE_LOADED) {
    instance.failure = "backend plugin " + record->path + " was refused: " + record->reason;
    return instance;
  }
  try {
    instance.backend = create_backend(record->descriptor, variant.cpu_isa);
  } catch (const std::exception& e) {
    instance.failure = e.what();
  }
  return instance;
}

Instance& instance(const std::string& label) {
  static std::map<std::string, Instance> instances;
  auto it = instances.find(label);
  if (it == instances.end()) {
    for (const auto& v : variants())
      if (v.label == label) it = instances.emplace(label, make_instance(v)).first;
  }
  return it->second;
}

}  // namespace

std::vector<std::string> backend_labels() {
  std::vector<std::string> labels;
  for (const auto& v : variants()) labels.push_back(v.label);
  return labels;
}

std::string label_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

std::unique_ptr<Backend> BackendTest::another_instance(const moe_plugin_descriptor* descriptor) {
  for (const auto& v : variants())
    if (v.label == GetParam()) return create_backend(descriptor, v.cpu_isa);
  return create_backend(descriptor, nullptr);
}

void BackendTest::SetUp() {
  Instance& inst = instance(GetParam());
  if (!inst.skip_reason.empty()) GTEST_SKIP() << inst.skip_reason;
  ASSERT_TRUE(inst.failure.empty()) << inst.failure;
  backend_ = inst.backend.get();
  ::testing::Test::RecordProperty("backend", backend_->description());
}

Tensor BackendTest::upload_f32(const std::vector<float>& values, Shape shape) {
  return Tensor::from_host(be(), MOE_DTYPE_F32, std::move(shape), values.data());
}

Tensor BackendTest::upload_bf16(const std::vector<float>& values, Shape shape) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = f32_to_bf16(values[i]);
  return Tensor::from_host(be(), MOE_DTYPE_BF16, std::move(shape), bits.data());
}

Tensor BackendTest::upload_float(const std::vector<float>& values, moe_dtype dtype, Shape shape) {
  return dtype == MOE_DTYPE_BF16 ? upload_bf16(values, std::move(shape)) : upload_f32(values, std::move(shape));
}

Tensor BackendTest::upload_i32(const std::vector<int32_t>& values, Shape shape) {
  return Tensor::from_host(be(), MOE_DTYPE_I32, std::move(shape), values.data());
}

Tensor BackendTest::poisoned(moe_dtype dtype, Shape shape) {
  Tensor t = Tensor::empty(be(), dtype, std::move(shape));
  std::vector<unsigned char> bytes(t.nbytes(), 0xff);
  t.copy_from_host(bytes.data(), bytes.size());
  return t;
}

void BackendTest::poison_next_allocations(const std::vector<size_t>& bytes) {
  be().trim();
  std::vector<Tensor> blocks;
  for (size_t b : bytes) blocks.push_back(poisoned(MOE_DTYPE_U8, {static_cast<int64_t>(b)}));
  // Released here: the blocks go back to the backend's cache, where the next allocations of these
  // size classes find them.
}

std::vector<float> random_floats(size_t count, uint32_t seed, float low, float high) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(count);
  for (auto& x : v) x = dist(rng);
  if (count > 0 && std::all_of(v.begin(), v.end(), [](float x) { return x == 0.f; })) v[0] = 0.5f;
  return v;
}

std::vector<float> round_to_bf16(std::vector<float> values) {
  for (auto& v : values) v = bf16_to_f32(f32_to_bf16(v));
  return values;
}

std::vector<float> rounded_if_bf16(std::vector<float> values, moe_dtype dtype) {
  return dtype == MOE_DTYPE_BF16 ? round_to_bf16(std::move(values)) : values;
}

std::vector<double> to_double(const std::vector<float>& values) { return {values.begin(), values.end()}; }

::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want, const char* name) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << name << ": shape " << shape_string(got.shape()) << " instead of "
                                         << shape_string(want.shape());
  const size_t bytes = got.nbytes();
  std::vector<unsigned char> a(bytes), b(bytes);
  if (bytes) {
    got.copy_to_host(a.data(), bytes);
    want.copy_to_host(b.data(), bytes);
  }
  for (size_t i = 0; i < bytes; ++i)
    if (a[i] != b[i]) return ::testing::AssertionFailure() << name << ": byte " << i << " differs";
  return ::testing::AssertionSuccess();
}

void expect_same_dispatch(const ops::Dispatch& got, const ops::Dispatch& want) {
  EXPECT_TRUE(same_bits(got.logits, want.logits, "logits"));
  EXPECT_TRUE(same_bits(got.routing.ids, want.routing.ids, "ids"));
  EXPECT_TRUE(same_bits(got.routing.weights, want.routing.weights, "weights"));
  EXPECT_TRUE(same_bits(got.permuted.x_sorted, want.permuted.x_sorted, "x_sorted"));
  EXPECT_TRUE(same_bits(got.permuted.offsets, want.permuted.offsets, "offsets"));
  EXPECT_TRUE(same_bits(got.permuted.source, want.permuted.source, "source"));
}

::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<double>& want, double tolerance) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "got " << got.size() << " values, want " << want.size();
  double largest = 0, worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]))
      return ::testing::AssertionFailure() << "element " << i << " is NaN (want " << want[i] << ")";
    largest = std::max(largest, std::fabs(want[i]));
    double diff = std::fabs(got[i] - want[i]);
    if (diff > worst) {
      worst = diff;
      worst_at = i;
    }
  }
  if (largest == 0) return ::testing::AssertionFailure() << "the reference is all zero: the test data is degenerate";
  if (worst / largest <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max|diff|/max|ref| = " << worst / largest << " > " << tolerance
                                       << " (element " << worst_at << ": got " << got[worst_at] << ", want "
                                       << want[worst_at] << ", max|ref| " << largest << ")";
}

}  // namespace moe::testing
