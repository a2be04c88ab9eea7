#include "token_ids.h"

#include <limits>
#include <string>
#include <vector>

namespace py = pybind11;

namespace moesdk {

IdArray to_ids(py::handle values, const char* what) {
  if (IdArray::check_(values)) return py::reinterpret_borrow<IdArray>(values);
  py::array any = py::array::ensure(values);
  if (!any) throw py::type_error(std::string(what) + " must be an array-like of integers");
  const char kind = any.dtype().kind();
  if (any.size() == 0 && kind == 'f') return IdArray(any.request().shape);  // np.array([]) is float64
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(what) + " must be integers, not dtype " + std::string(py::str(any.dtype())));
  if (any.size() > 0) {
    auto np = py::module_::import("numpy");
    if (np.attr("min")(any).cast<double>() < std::numeric_limits<int32_t>::min() ||
        np.attr("max")(any).cast<double>() > std::numeric_limits<int32_t>::max())
      throw py::value_error(std::string(what) + " must fit in int32");
  }
  return py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(any);
}

namespace {

bool is_ragged_batch(py::handle tokens) {
  if (!py::isinstance<py::list>(tokens) && !py::isinstance<py::tuple>(tokens)) return false;
  auto seq = py::reinterpret_borrow<py::sequence>(tokens);
  return seq.size() > 0 && !py::isinstance<py::int_>(seq[0]) && py::hasattr(seq[0], "__len__");
}

}  // namespace

PackedBatch pack(py::handle tokens, py::handle lengths) {
  PackedBatch batch;
  if (lengths.is_none() && is_ragged_batch(tokens)) {
    std::vector<int32_t> ids;
    std::vector<int64_t> lens;
    for (py::handle sequence : tokens) {
      IdArray s = to_ids(sequence);
      if (s.ndim() != 1) throw py::value_error("each sequence of a batch must be 1-D");
      ids.insert(ids.end(), s.data(), s.data() + s.size());
      lens.push_back(s.size());
    }
    batch.ids = IdArray(static_cast<py::ssize_t>(ids.size()), ids.data());
    batch.lengths = LengthArray(static_cast<py::ssize_t>(lens.size()), lens.data());
    return batch;
  }
  batch.ids = to_ids(tokens);
  if (!lengths.is_none()) {
    if (batch.ids.ndim() != 1) throw py::value_error("with lengths, tokens must be 1-D (the sequences packed)");
    batch.lengths = LengthArray::ensure(lengths);
    if (!batch.lengths || batch.lengths.ndim() != 1) throw py::value_error("lengths must be a 1-D array of integers");
  } else if (batch.ids.ndim() == 2) {  // [batch, sequence]: rows of equal length
    std::vector<int64_t> lens(static_cast<size_t>(batch.ids.shape(0)), batch.ids.shape(1));
    batch.lengths = LengthArray(static_cast<py::ssize_t>(lens.size()), lens.data());
  } else if (batch.ids.ndim() == 1) {
    int64_t n = batch.ids.size();
    batch.lengths = LengthArray(1, &n);
  } else {
    throw py::value_error("tokens must be 1-D (one sequence), 2-D (equal lengths) or a list of sequences");
  }
  // moe_forward reads sum(lengths) ids: check before it reads past the array.
  int64_t total = 0;
  for (py::ssize_t i = 0; i < batch.lengths.size(); ++i) {
    if (batch.lengths.data()[i] < 0) throw py::value_error("lengths must not be negative");
    total += batch.lengths.data()[i];
  }
  if (total != batch.ids.size())
    throw py::value_error("lengths add up to " + std::to_string(total) + " tokens but tokens holds " +
                          std::to_string(batch.ids.size()));
  return batch;
}

}  // namespace moesdk
