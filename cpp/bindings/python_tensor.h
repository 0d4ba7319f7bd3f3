// The Python Tensor type: a CPython object that holds a tg::Tensor. Operators reach C++
// through the type's number slots, with no dispatcher in between.
#pragma once

#include <Python.h>

#include <algorithm>
#include <memory>

#include "tapegrad/tapegrad.h"

namespace tg::python {

// The object of tapegrad.Tensor and of its Python subclasses: every one holds a defined tensor
// from the moment Python can see it (only wrap_as allocates one, given the tensor).
struct PyTensor {
  PyObject_HEAD
  Tensor tensor;
  PyObject* weakrefs;
  PyObject* dict;  // user attributes (t.name = ...), as torch's tensors take; null until the first
  // Whether a Python hook was registered through this object (register_python_hook): the
  // collector support then walks the graph it owns.
  bool registered_python_hooks;
};

extern PyTypeObject* tensor_type;

// Creates the type and adds it to `module` as Tensor; false with a Python error set on failure.
bool add_tensor_type(PyObject* module);
// How many tensors and nodes the type's garbage-collector support has walked through, for
// tests of the collector's cost.
uint64_t objects_walked_by_collector();

// A Tensor or an instance of a subclass (nn.Parameter, a user's class): both hold a tensor.
inline bool is_tensor(PyObject* object) {
  return Py_TYPE(object) == tensor_type || PyType_IsSubtype(Py_TYPE(object), tensor_type);
}
inline const Tensor& unwrap(PyObject* object) { return reinterpret_cast<PyTensor*>(object)->tensor; }
// A Python function registered with register_hook, as the core holds it (a GradHook). The
// Tensor type's garbage-collector support finds a tensor's Python hooks by this type.
struct PythonHook {
  explicit PythonHook(PyObject* function);  // takes a reference to `function`
  Tensor operator()(const Tensor& grad) const;  // calls the function with the GIL taken
  std::shared_ptr<PyObject> function;  // the last reference is dropped with the GIL taken
};

// tensor.register_hook(function), recorded for the Tensor type's garbage-collector support;
// `tensor` has a Python object (the one the method was called on).
void register_python_hook(Tensor tensor, PyObject* function);

// A new reference to the object of `tensor` (the existing one if there is one); None for
// an undefined tensor; null with a Python error set on failure.
PyObject* wrap(Tensor tensor);
// A new object of `type` (Tensor or a subclass) for `tensor`, which must have none yet.
PyObject* wrap_as(PyTypeObject* type, Tensor tensor);

// Tensor.__new__ (type(...) for the Tensor type and its subclasses): builds the tensor as
// torch's legacy constructor torch.Tensor(...) does; defined beside the factories.
PyObject* new_tensor_object(PyTypeObject* type, PyObject* args, PyObject* kwargs);

// The other operand of a binary op: a tensor, or a Python number wrapped as torch wraps it
// (keeping `like`'s dtype where it can). Undefined for anything else.
Tensor operand(PyObject* other, const Tensor& like);

// An op's work in elements of an elementwise kernel (about a nanosecond each here). From
// kReleaseGilWork (some 30 us and up) an op runs with the GIL released, so other Python
// threads run meanwhile; below it, dropping and retaking the GIL would cost more than it lets
// others do. Measured: `x * y` on 16 elements costs the same with the check as without.
constexpr int64_t kReleaseGilWork = int64_t(1) << 16;
inline int64_t elementwise_work(const Tensor& a) { return a.numel(); }
inline int64_t elementwise_work(const Tensor& a, const Tensor& b) { return std::max(a.numel(), b.numel()); }
// A matrix product of `left_numel` elements by `columns` columns: BLAS does some 16
// multiply-adds in the time of one elementwise element.
inline int64_t product_work(int64_t left_numel, int64_t columns) { return left_numel * columns / 16; }
inline int64_t matmul_work(const Tensor& a, const Tensor& b) {
  return product_work(a.numel(), b.ndim() > 1 ? b.shape()[b.ndim() - 1] : 1);
}

// Returns op(), run with the GIL released when `work` is at least kReleaseGilWork. op must
// touch C++ objects only (its arguments converted before, its result wrapped after).
template <class Op>
decltype(auto) releasing_gil(int64_t work, Op&& op) {
  if (work < kReleaseGilWork) return op();
  struct Released {
    PyThreadState* thread = PyEval_SaveThread();
    ~Released() { PyEval_RestoreThread(thread); }
  } released;
  return op();
}

Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b);

// Sets the Python exception for the C++ exception being handled; the one place where C++
// errors become Python errors (pybind11's translator calls it too).
void set_error_from_exception();

}  // namespace tg::python
