// Any bytes as a safetensors file image. Parsing must end in a set of tensor views or a moe::Error,
// never a crash; every view must lie inside the input (the reads below let ASan check that) and
// agree with its shape and dtype.
#include <cstdint>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "io/tensor_convert.h"

namespace {

void check_view(const moe::io::TensorView& t) {
  const size_t numel = static_cast<size_t>(moe::shape_numel(t.shape));
  if (numel * moe::dtype_size(t.dtype) != t.nbytes) __builtin_trap();
  if (t.nbytes > 0) {
    const auto* bytes = static_cast<const volatile uint8_t*>(t.data);
    (void)bytes[0];
    (void)bytes[t.nbytes - 1];
  }
  if (t.dtype == MOE_DTYPE_F32 || t.dtype == MOE_DTYPE_BF16 || t.dtype == MOE_DTYPE_F16 || t.dtype == MOE_DTYPE_F64) {
    std::vector<float> f32(numel);  // numel <= input size: bounded
    moe::io::read_as_f32(t, f32);
    std::vector<uint16_t> bf16(numel);
    moe::io::read_as_bf16(t, bf16);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::shared_ptr<moe::io::SafetensorsFile> file;
  try {
    file = moe::io::SafetensorsFile::parse(data, size, "<fuzz input>");
  } catch (const moe::Error&) {
    return 0;
  }
  for (const std::string& name : file->names()) {
    if (!file->contains(name)) __builtin_trap();
    const moe::io::TensorView* t = nullptr;
    try {
      t = file->find(name);
    } catch (const moe::Error& e) {
      if (e.status() != MOE_ERR_UNSUPPORTED) __builtin_trap();  // only an unsupported dtype may refuse
      continue;
    }
    if (!t || t->name != name) __builtin_trap();
    check_view(*t);
  }
  return 0;
}
