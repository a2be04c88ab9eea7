#include "token_ids.h"

#include <limits>
#include <string>

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

}  // namespace moesdk
