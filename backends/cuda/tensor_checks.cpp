#include "tensor_checks.h"

#include "errors.h"

namespace moe_cuda {

const char* dtype_name(moe_dtype dtype) {
  switch (dtype) {
    case MOE_DTYPE_F32: return "f32";
    case MOE_DTYPE_BF16: return "bf16";
    case MOE_DTYPE_F16: return "f16";
    case MOE_DTYPE_I32: return "i32";
    case MOE_DTYPE_I64: return "i64";
    case MOE_DTYPE_I8: return "i8";
    case MOE_DTYPE_U8: return "u8";
    case MOE_DTYPE_F64: return "f64";
    default: return "unknown";
  }
}

std::string shape_string(const moe_tensor& t) {
  std::string s = "[";
  const int n = t.ndim < 0 ? 0 : (t.ndim > MOE_MAX_DIMS ? MOE_MAX_DIMS : t.ndim);
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

namespace {

int64_t check_layout(const moe_tensor* t, const char* name, int ndim) {
  if (t->ndim < 0 || t->ndim > MOE_MAX_DIMS)
    invalid(std::string(name) + " has " + std::to_string(t->ndim) + " dimensions (at most " +
            std::to_string(MOE_MAX_DIMS) + ")");
  if (ndim >= 0 && t->ndim != ndim)
    invalid(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, has shape " + shape_string(*t));
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) {
    const int64_t d = t->shape[i];
    // 2^40 elements per tensor is far beyond device memory; the bound keeps every index product in range.
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d))
      invalid(std::string(name) + " has a negative or too large shape " + shape_string(*t));
    n *= d;
  }
  if (n > 0 && !t->data) invalid(std::string(name) + " has no data");
  return n;
}

}  // namespace

int64_t check_tensor(const moe_tensor* t, const char* name, moe_dtype dtype, int ndim) {
  if (!t) invalid(std::string(name) + " is null");
  if (t->dtype != dtype)
    fail(MOE_ERR_UNSUPPORTED, std::string(name) + " must be " + dtype_name(dtype) + ", is " + dtype_name(t->dtype));
  return check_layout(t, name, ndim);
}

int64_t check_float_tensor(const moe_tensor* t, const char* name, int ndim) {
  if (!t) invalid(std::string(name) + " is null");
  if (t->dtype != MOE_DTYPE_F32 && t->dtype != MOE_DTYPE_BF16)
    fail(MOE_ERR_UNSUPPORTED, std::string(name) + " must be f32 or bf16, is " + dtype_name(t->dtype));
  return check_layout(t, name, ndim);
}

void check_pointer(const void* p, const char* name) {
  if (!p) invalid(std::string(name) + " is null");
}

namespace {

int64_t element_bytes_of(moe_dtype dtype) {
  switch (dtype) {
    case MOE_DTYPE_BF16:
    case MOE_DTYPE_F16: return 2;
    case MOE_DTYPE_I64:
    case MOE_DTYPE_F64: return 8;
    case MOE_DTYPE_I8:
    case MOE_DTYPE_U8: return 1;
    default: return 4;
  }
}

int64_t bytes_of(const moe_tensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
  return n * element_bytes_of(t.dtype);
}

}  // namespace

void check_disjoint(const moe_tensor* a, const char* a_name, const moe_tensor* b, const char* b_name, const char* why) {
  const int64_t a_bytes = bytes_of(*a), b_bytes = bytes_of(*b);
  const char *p = static_cast<const char*>(a->data), *q = static_cast<const char*>(b->data);
  if (a_bytes > 0 && b_bytes > 0 && p < q + b_bytes && q < p + a_bytes)
    invalid(std::string(a_name) + " and " + b_name + " must not overlap (" + why + ")");
}

}  // namespace moe_cuda
