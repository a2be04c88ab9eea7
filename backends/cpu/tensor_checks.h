// Argument checks shared by the ops. The core checks shapes before calling, but the op table is a
// public ABI: a backend must still reject what it cannot do with a status and a message that names
// the argument, never crash. These throw OpError (see errors.h).
#pragma once

#include <cstdint>
#include <string>

#include "moe/moe_plugin.h"

namespace moe_cpu {

const char* dtype_name(moe_dtype dtype);
std::string shape_string(const moe_tensor& t);

// Checks that `t` is present, has `dtype` and (unless ndim < 0) `ndim` dimensions, sane dimensions
// and data when it has elements. Returns its element count.
int64_t check_tensor(const moe_tensor* t, const char* name, moe_dtype dtype, int ndim);
// The same for a tensor that may be f32 or bf16.
int64_t check_float_tensor(const moe_tensor* t, const char* name, int ndim);

void check_pointer(const void* p, const char* name);

// Throws naming both when tensors a and b (already checked) share a byte of memory; `why` says why they
// must not (a fused op's output written while an input is still read).
void check_disjoint(const moe_tensor* a, const char* a_name, const moe_tensor* b, const char* b_name, const char* why);

template <typename T>
T* data_of(const moe_tensor* t) {
  return static_cast<T*>(t->data);
}

}  // namespace moe_cpu
