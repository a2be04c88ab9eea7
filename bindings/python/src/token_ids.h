// Token ids (and labels, and batches of sequences) from Python as the C arrays the C ABI reads.
#pragma once

#include <pybind11/numpy.h>

namespace moesdk {

using IdArray = pybind11::array_t<int32_t, pybind11::array::c_style>;

// int32 C-contiguous arrays are used in place (no copy); other integer array-likes are converted after
// a range check (a silent wrap-around could turn a bad id into a valid one). `what` names the argument
// in errors ("token ids", "labels").
IdArray to_ids(pybind11::handle values, const char* what = "token ids");

using LengthArray = pybind11::array_t<int64_t, pybind11::array::c_style>;

// A batch of sequences as moe_forward and moe_generate_batch take it: packed ids and one length per
// sequence. Arrays the caller passed in the right dtype and layout are used in place.
struct PackedBatch {
  IdArray ids;
  LengthArray lengths;
};

// tokens: one sequence (1-D), equal-length sequences (2-D), a list of sequences, or packed ids (1-D)
// with lengths. ValueError when the lengths do not add up to the ids.
PackedBatch pack(pybind11::handle tokens, pybind11::handle lengths);

}  // namespace moesdk
