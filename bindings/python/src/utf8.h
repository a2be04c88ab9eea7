// Text from the library is UTF-8; generation can stop in the middle of a character, so invalid bytes
// become U+FFFD instead of raising.
#pragma once

#include <pybind11/pybind11.h>

#include <cstring>

namespace moesdk {

inline pybind11::str utf8_to_str(const char* data, size_t size) {
  PyObject* text = PyUnicode_DecodeUTF8(data, static_cast<Py_ssize_t>(size), "replace");
  if (!text) throw pybind11::error_already_set();
  return pybind11::reinterpret_steal<pybind11::str>(text);
}

inline pybind11::str utf8_to_str(const char* text) { return utf8_to_str(text, std::strlen(text)); }

}  // namespace moesdk
