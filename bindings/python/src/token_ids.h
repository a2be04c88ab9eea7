// Token ids (and labels) from Python as the int32 C arrays the C ABI reads.
#pragma once

#include <pybind11/numpy.h>

namespace moesdk {

using IdArray = pybind11::array_t<int32_t, pybind11::array::c_style>;

// int32 C-contiguous arrays are used in place (no copy); other integer array-likes are converted after
// a range check (a silent wrap-around could turn a bad id into a valid one). `what` names the argument
// in errors ("token ids", "labels").
IdArray to_ids(pybind11::handle values, const char* what = "token ids");

}  // namespace moesdk
