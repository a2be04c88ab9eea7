#include "errors.h"

namespace py = pybind11;

namespace moesdk {

void check(moe_status status) {
  if (status != MOE_OK) throw LibraryError{status, moe_last_error_message()};
}

void register_errors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr raised) {
    try {
      if (raised) std::rethrow_exception(raised);
    } catch (const LibraryError& e) {
      // The exception classes live in Python (moesdk/errors.py) so that users can subclass and
      // pickle them like any other; errors.from_status picks the class for the status.
      py::object error = py::module_::import("moesdk.errors").attr("from_status")(e.status, e.message);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    }
  });
  m.def("status_string", &moe_status_string, py::arg("status"),
        "The fixed name of a status code (\"MOE_ERR_FORMAT\").");
}

}  // namespace moesdk
