// The Python Tensor type: a CPython object that holds a tg::Tensor. Operators reach C++
// through the type's number slots, with no dispatcher in between.
#pragma once

#include <Python.h>

#include <memory>

#include "tapegrad/tapegrad.h"

namespace tg::python {

struct PyTensor {
  PyObject_HEAD
  Tensor tensor;
  PyObject* weakrefs;
};

extern PyTypeObject* tensor_type;

// Creates the type and adds it to `module` as Tensor; false with a Python error set on failure.
bool add_tensor_type(PyObject* module);

inline bool is_tensor(PyObject* object) { return Py_TYPE(object) == tensor_type; }
inline const Tensor& unwrap(PyObject* object) { return reinterpret_cast<PyTensor*>(object)->tensor; }
// A Python function registered with register_hook, as the core holds it (a GradHook). The
// Tensor type's garbage-collector support finds a tensor's Python hooks by this type.
struct PythonHook {
  explicit PythonHook(PyObject* function);  // takes a reference to `function`
  Tensor operator()(const Tensor& grad) const;  // calls the function with the GIL taken
  std::shared_ptr<PyObject> function;  // the last reference is dropped with the GIL taken
};

// A new reference to the object of `tensor` (the existing one if there is one); None for
// an undefined tensor; null with a Python error set on failure.
PyObject* wrap(Tensor tensor);

// The other operand of a binary op: a tensor, or a Python number wrapped as torch wraps it
// (keeping `like`'s dtype where it can). Undefined for anything else.
Tensor operand(PyObject* other, const Tensor& like);

// A matrix product that lets other Python threads run while it computes, when it is big
// enough (kReleaseGilWork multiply-adds) for that to pay.
constexpr int64_t kReleaseGilWork = int64_t(1) << 20;
Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b);

// Sets the Python exception for the C++ exception being handled; the one place where C++
// errors become Python errors (pybind11's translator calls it too).
void set_error_from_exception();

}  // namespace tg::python
