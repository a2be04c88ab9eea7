#include "reference_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "base/dtype.h"
#include "io/safetensors.h"

namespace moe_test {
namespace {

template <typename T>
std::vector<T> read(const moe::io::SafetensorsFile& f, const std::string& name) {
  const moe::io::TensorView* v = f.find(name);
  if (!v) throw std::runtime_error(f.path() + " has no tensor " + name);
  size_t n = static_cast<size_t>(moe::shape_numel(v->shape));
  std::vector<T> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (v->dtype) {
      case MOE_DTYPE_F32: out[i] = static_cast<T>(static_cast<const float*>(v->data)[i]); break;
      case MOE_DTYPE_F64: out[i] = static_cast<T>(static_cast<const double*>(v->data)[i]); break;
      case MOE_DTYPE_I64: out[i] = static_cast<T>(static_cast<const int64_t*>(v->data)[i]); break;
      case MOE_DTYPE_I32: out[i] = static_cast<T>(static_cast<const int32_t*>(v->data)[i]); break;
      default: throw std::runtime_error(name + ": unexpected dtype");
    }
  }
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> ReferenceFixture::sequences() const {
  std::vector<std::vector<int32_t>> seqs;
  size_t offset = 0;
  for (int64_t len : seq_lengths) {
    seqs.emplace_back(input_ids.begin() + offset, input_ids.begin() + offset + len);
    offset += static_cast<size_t>(len);
  }
  return seqs;
}

ReferenceFixture load_fixture(const std::string& name) {
  ReferenceFixture fx;
  fx.name = name;
  fx.directory = std::string(MOE_REFERENCE_DIR) + "/" + name;
  auto f = moe::io::SafetensorsFile::open(fx.directory + "/reference.safetensors");
  fx.input_ids = read<int32_t>(*f, "input_ids");
  fx.seq_lengths = read<int64_t>(*f, "seq_lengths");
  fx.logits = read<float>(*f, "logits");
  fx.gen_prompt = read<int32_t>(*f, "gen_prompt");
  fx.gen_tokens = read<int32_t>(*f, "gen_tokens");
  fx.vocab = static_cast<int64_t>(fx.logits.size() / fx.input_ids.size());
  for (const auto& name : f->names())
    if (name.rfind("adamw5.", 0) == 0) fx.parameter_count += moe::shape_numel(f->find(name)->shape);
  return fx;
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(MOE_REFERENCE_DIR))
    if (e.is_directory() && std::filesystem::exists(e.path() / "reference.safetensors"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

moe::context test_context() {
  moe::context::options o;
  // The backend under test: MOE_TEST_BACKEND (scripts/gpu-check runs these tests with "cuda"), else cpu.
  const char* backend = std::getenv("MOE_TEST_BACKEND");
  o.backend = backend && *backend ? backend : "cpu";
  const char* dir = std::getenv("MOE_PLUGIN_DIR");
  if (dir) o.plugin_dirs = {dir};
  o.search_default_dirs = dir == nullptr;
  return moe::context(o);
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(a[i])) d = INFINITY;
    max_diff = std::max(max_diff, d);
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

}  // namespace moe_test
