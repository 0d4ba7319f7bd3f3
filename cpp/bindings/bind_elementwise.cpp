// Binding of the elementwise ops' named forms (the operators are number slots in python_tensor.cpp).
#include "bindings.h"

namespace tg::python {

void bind_elementwise(py::module_& m) {
  m.def("add", [](py::handle a, py::handle b) { return binary_function<tg::add>("add", a, b); });
  m.def("sub", [](py::handle a, py::handle b) { return binary_function<tg::sub>("sub", a, b); });
  m.def("mul", [](py::handle a, py::handle b) { return binary_function<tg::mul>("mul", a, b); });
  m.def("div", [](py::handle a, py::handle b) { return binary_function<tg::div>("div", a, b); });
  m.def("pow", [](py::handle a, py::handle b) { return binary_function<tg::pow>("pow", a, b); });
  m.def("neg", &tg::neg);
}

}  // namespace tg::python
