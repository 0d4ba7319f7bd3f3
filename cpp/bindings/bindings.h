// What every binding file shares: pybind11, the Tensor type_caster, and the helpers that
// add methods to tapegrad.Tensor and convert Python operands.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>

#include "python_tensor.h"
#include "tapegrad/tapegrad.h"

namespace py = pybind11;

// A Tensor crosses into Python as the tapegrad.Tensor object that holds it (one object per
// tensor, so x.grad is x.grad); an undefined tensor is None.
namespace pybind11::detail {
template <>
struct type_caster<tg::Tensor> {
  PYBIND11_TYPE_CASTER(tg::Tensor, const_name("Tensor"));
  bool load(handle source, bool) {
    if (!tg::python::is_tensor(source.ptr())) return false;
    value = tg::python::unwrap(source.ptr());
    return true;
  }
  static handle cast(const tg::Tensor& tensor, return_value_policy, handle) {
    PyObject* object = tg::python::wrap(tensor);
    if (!object) throw error_already_set();
    return object;
  }
};
}  // namespace pybind11::detail

namespace tg::python {

inline bool is_tensor(py::handle object) { return is_tensor(object.ptr()); }
inline Tensor operand(py::handle other, const Tensor& like) { return operand(other.ptr(), like); }
inline std::string type_name(py::handle object) { return Py_TYPE(object.ptr())->tp_name; }

// A UserWarning at the caller's line; an exception where warnings are errors.
inline void warn(const std::string& message) {
  if (PyErr_WarnEx(PyExc_UserWarning, message.c_str(), 1) < 0) throw py::error_already_set();
}

using BinaryOp = Tensor (*)(const Tensor&, const Tensor&);

// tg.add(a, b) and friends: either argument may be a number, one must be a tensor; a tensor
// and a number `b` run with_number (torch's rules for numbers, as tg.pow(t, -1)).
template <BinaryOp op, BinaryOp with_number = op>
inline Tensor binary_function(const char* name, py::handle a, py::handle b) {
  Tensor x = is_tensor(a) ? a.cast<Tensor>() : Tensor();
  Tensor y = is_tensor(b) ? b.cast<Tensor>() : Tensor();
  const bool b_is_number = x.defined() && !y.defined();
  if (b_is_number) y = operand(b, x);
  if (y.defined() && !x.defined()) x = operand(a, y);
  if (!x.defined() || !y.defined())
    throw py::type_error(tg::detail::concat(name, "(): expected tensors or numbers, got ",
                                            type_name(a), " and ",
                                            type_name(b)));
  return releasing_gil(elementwise_work(x, y), [&] { return b_is_number ? with_number(x, y) : op(x, y); });
}

// Adds a method to tapegrad.Tensor (a type pybind11 does not own): pybind11 converts the
// arguments, the Tensor type_caster above converts self.
template <class Function, class... Extra>
inline void def_method(const char* name, Function&& function, const Extra&... extra) {
  py::handle type(reinterpret_cast<PyObject*>(tg::python::tensor_type));
  py::setattr(type, name, py::cpp_function(std::forward<Function>(function), py::name(name), py::is_method(type),
                                           py::sibling(py::getattr(type, name, py::none())), extra...));
}

template <class Getter>
inline void def_property(const char* name, Getter&& getter, const char* doc) {
  py::handle type(reinterpret_cast<PyObject*>(tg::python::tensor_type));
  py::setattr(type, name, py::module_::import("builtins").attr("property")(
                              py::cpp_function(std::forward<Getter>(getter), py::is_method(type)), py::none(), py::none(), doc));
}

// numpy interop (bind_tensor.cpp)
py::dtype numpy_dtype(DType dtype);
std::optional<DType> dtype_of_numpy(const py::dtype& dtype);
py::array as_numpy(const Tensor& tensor);  // shares the buffer
Tensor from_numpy(const py::array& array);  // shares the buffer
py::object item(const Tensor& tensor);     // a Python float, int or bool

// One function per op family, each in its own file, called once by the module.
void bind_tensor(py::module_& m);
void bind_factories(py::module_& m);
void bind_elementwise(py::module_& m);
void bind_reduce(py::module_& m);
void bind_shape(py::module_& m);
void bind_linalg(py::module_& m);
void bind_autograd(py::module_& m);
void bind_nn(py::module_& m);

}  // namespace tg::python
