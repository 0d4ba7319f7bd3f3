// tapegrad._core: the Python module. The Tensor type is in python_tensor.cpp; each op
// family binds its functions and methods in its own bind_*.cpp.
#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "tapegrad's C++ core: tensors, ops and the backward engine";
  if (!tg::python::add_tensor_type(m.ptr())) throw py::error_already_set();
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const py::builtin_exception&) {
      throw;  // pybind11's own (TypeError for bad arguments...): its translator sets them
    } catch (const py::error_already_set&) {
      throw;
    } catch (...) {
      tg::python::set_error_from_exception();
    }
  });
  tg::python::bind_tensor(m);
  tg::python::bind_factories(m);
  tg::python::bind_elementwise(m);
  tg::python::bind_reduce(m);
  tg::python::bind_shape(m);
  tg::python::bind_linalg(m);
  tg::python::bind_autograd(m);
  tg::python::bind_nn(m);
}
