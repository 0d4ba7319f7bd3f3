// The Python Tensor type, written against the CPython API: the hot paths (operators,
// comparisons, the attributes read in loops) go from the interpreter straight to C++.
// Measured: through a pybind11 class, `x.ndim` cost 350 ns and `x * y` 1.2 us, most of it
// in pybind11's type lookups and instance registry; here they cost what the op costs.
#include "python_tensor.h"

#include <structmember.h>

#include <algorithm>
#include <new>
#include <type_traits>
#include <unordered_map>

namespace tg::python {

PyTypeObject* tensor_type = nullptr;

void set_error_from_exception() {
  try {
    throw;
  } catch (const TypeError& error) {
    PyErr_SetString(PyExc_TypeError, error.what());
  } catch (const MemoryError& error) {
    PyErr_SetString(PyExc_MemoryError, error.what());
  } catch (const OverflowError& error) {
    PyErr_SetString(PyExc_OverflowError, error.what());
  } catch (const NotImplementedError& error) {
    PyErr_SetString(PyExc_NotImplementedError, error.what());
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, "tapegrad: out of memory");
  } catch (const std::out_of_range& error) {
    PyErr_SetString(PyExc_IndexError, error.what());
  } catch (const std::invalid_argument& error) {
    PyErr_SetString(PyExc_ValueError, error.what());
  } catch (const std::logic_error& error) {
    PyErr_SetString(PyExc_SystemError, error.what());  // a TG_ASSERT: an engine bug, not the user's
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
  } catch (...) {
    PyErr_SetString(PyExc_SystemError, "tapegrad: unknown C++ exception");
  }
}

// Runs `body` and turns a C++ exception into a Python error and `failed`.
template <class Body>
std::invoke_result_t<Body&> guarded(Body&& body, std::invoke_result_t<Body&> failed) {
  try {
    return body();
  } catch (...) {
    set_error_from_exception();
    return failed;
  }
}

PythonHook::PythonHook(PyObject* function)
    : function(Py_NewRef(function), [](PyObject* held) {
        // The last copy of a hook may be dropped where the GIL is not held (after a backward).
        const PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(held);
        PyGILState_Release(gil);
      }) {}

PyObject* wrap(Tensor tensor) {
  if (!tensor.defined()) Py_RETURN_NONE;
  if (auto* existing = static_cast<PyObject*>(tensor.impl()->python_object)) {
    Py_INCREF(existing);
    return existing;
  }
  return wrap_as(tensor_type, std::move(tensor));
}

PyObject* wrap_as(PyTypeObject* type, Tensor tensor) {
  auto* self = reinterpret_cast<PyTensor*>(type->tp_alloc(type, 0));  // zeroed: weakrefs and dict null
  if (!self) return nullptr;
  new (&self->tensor) Tensor(std::move(tensor));
  self->tensor.impl()->python_object = self;
  return reinterpret_cast<PyObject*>(self);
}

Tensor matmul_releasing_gil(const Tensor& a, const Tensor& b) {
  return releasing_gil(matmul_work(a, b), [&] { return matmul(a, b); });
}

namespace {
// A Python int as an operand of `like`: exact in int64. From 2^63 to 2^64 it is a uint64, as
// in torch (where an int64 tensor takes it wrapped around); beyond, OverflowError as in torch.
Tensor integer_operand(PyObject* integer, const Tensor& like) {
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(integer, &overflow);
  if (overflow == 0) return wrap_scalar(static_cast<int64_t>(value), like);
  const unsigned long long large = overflow > 0 ? PyLong_AsUnsignedLongLong(integer) : 0;
  if (overflow < 0 || PyErr_Occurred()) {
    PyErr_Clear();
    throw OverflowError("int too big to convert: a number operand must fit in int64 or uint64");
  }
  return is_floating(like.dtype()) ? wrap_scalar(static_cast<double>(large), like)
                                   : wrap_scalar(static_cast<int64_t>(large), like);
}
}  // namespace

Tensor operand(PyObject* other, const Tensor& like) {
  if (is_tensor(other)) return unwrap(other);
  if (PyFloat_Check(other)) return wrap_scalar(PyFloat_AS_DOUBLE(other), like);
  if (PyBool_Check(other)) return scalar_tensor(other == Py_True, DType::Bool);
  if (PyLong_Check(other)) return integer_operand(other, like);
  // numpy's scalars (np.float32, np.int64, ...): integers by __index__, reals by __float__.
  // A 0-d array is a sequence: numpy computes with it, and __array_wrap__ makes a tensor of that.
  if (PyIndex_Check(other) && !PySequence_Check(other)) {
    const std::unique_ptr<PyObject, void (*)(PyObject*)> integer(PyNumber_Index(other), Py_DecRef);
    if (!integer) {
      PyErr_Clear();
      return Tensor();
    }
    return integer_operand(integer.get(), like);
  }
  if (Py_TYPE(other)->tp_as_number && Py_TYPE(other)->tp_as_number->nb_float && !PySequence_Check(other)) {
    const double value = PyFloat_AsDouble(other);
    if (value == -1.0 && PyErr_Occurred()) return Tensor();
    return wrap_scalar(value, like);
  }
  return Tensor();
}

namespace {

// --- garbage-collector support ---
//
// The references of a Tensor object to Python objects are the Python hooks held in the C++
// state that the object owns exclusively (exclusively_owned: the tensor, its grad_fn, and
// the nodes and saved tensors under it that nothing else holds a strong reference to). Only
// these are reported, so that each reference is reported by one object alone and none is
// reachable from outside the collector's view (a C++ caller, another graph): reporting a
// reference that is not owned could free live objects, while reporting fewer only keeps a
// cycle alive. This is torch's rule for THPVariable (traverse the grad_fn only when the
// tensor and its grad_fn have one owner each) carried from one node to the exclusively owned
// part of the graph. Nodes of a running backward pass are held by the engine too, so they
// are never among them, and a pass on another thread never touches what is reported.
// A tensor's .grad has no object of its own to report: its Python object, if it has one,
// holds it, not the reverse.

uint64_t walked_by_collector = 0;  // objects_walked_by_collector()

// What holds the Python hooks registered through each tensor object: its leaf's TensorImpl, or
// the nodes that were its grad_fn then. A holder is pinned while that object lives and (for a
// node) is still its tensor's grad_fn: the object's strong reference, outside every graph, then
// keeps any other tensor object from owning the holder exclusively, so only the object itself
// can have the holder's hooks to report. Only the holders that are not pinned (their object is
// gone or its tensor took a new history) can be reported by any object, and only then must every
// object walk its graph. Read and changed with the GIL held; the weak references are only
// compared and tested for expiry (never locked: the last reference must not go in a traversal).
struct RegisteredHooks {
  bool on_leaf = false;
  std::vector<std::weak_ptr<Node>> nodes;
};
std::unordered_map<const PyTensor*, RegisteredHooks> hooks_by_object;
// Holders whose tensor object is gone, while they may live (expired ones are dropped lazily).
std::vector<std::weak_ptr<const void>> unpinned_holders;
uint64_t pinning_changes = 0;  // hooks registered and registering objects gone: when the pinning may change

bool same_object(const std::weak_ptr<Node>& held, const std::shared_ptr<Node>& node) {
  return !held.owner_before(node) && !node.owner_before(held);
}

// Whether a hook holder lives that no tensor object pins. Rechecked when hooks are registered,
// a registering object goes, or a tensor takes a new history; otherwise O(1).
bool unpinned_hook_holder_lives() {
  static uint64_t checked_at_pinning_changes = ~uint64_t(0), checked_at_histories = 0;
  static bool lives = false;
  const uint64_t histories = histories_set();
  if (checked_at_pinning_changes == pinning_changes && checked_at_histories == histories) return lives;
  checked_at_pinning_changes = pinning_changes;
  checked_at_histories = histories;
  unpinned_holders.erase(std::remove_if(unpinned_holders.begin(), unpinned_holders.end(),
                                        [](const std::weak_ptr<const void>& holder) { return holder.expired(); }),
                         unpinned_holders.end());
  lives = !unpinned_holders.empty();
  for (auto& [object, registered] : hooks_by_object) {
    const std::shared_ptr<Node>& grad_fn = object->tensor.impl()->grad_fn;
    auto& nodes = registered.nodes;
    nodes.erase(std::remove_if(nodes.begin(), nodes.end(), [](const std::weak_ptr<Node>& node) { return node.expired(); }),
                nodes.end());
    lives = lives || std::any_of(nodes.begin(), nodes.end(),
                                 [&](const std::weak_ptr<Node>& node) { return !same_object(node, grad_fn); });
  }
  return lives;
}

// The object `self` goes: what holds the hooks registered through it is pinned no more.
void unpin_hook_holders(PyTensor* self) {
  const auto registered = hooks_by_object.find(self);
  if (registered->second.on_leaf) unpinned_holders.emplace_back(self->tensor.impl_ptr());
  for (std::weak_ptr<Node>& node : registered->second.nodes) unpinned_holders.emplace_back(std::move(node));
  hooks_by_object.erase(registered);
  ++pinning_changes;
}

// Calls `visit` on each list of hooks in the C++ state owned by `self` alone. The collector
// calls this for every tensor object it examines, several times per collection, so it walks
// only where a Python hook can be found: from an object that registered one, or from every
// object while some hook holder is pinned by none (with a 400,000-node graph alive,
// gc.collect() took 1.5 s when it walked the graph for each hook anywhere: bench/gc_cost.py).
template <class Visit>
void for_each_owned_hook_list(PyTensor* self, Visit visit) {
  if (!self->tensor.defined() || (!self->registered_python_hooks && !unpinned_hook_holder_lives())) return;
  const ExclusivelyOwned owned = exclusively_owned(self->tensor.impl_ptr());
  walked_by_collector += owned.tensors.size() + owned.nodes.size();
  for (TensorImpl* tensor : owned.tensors) visit(tensor->hooks);
  for (Node* node : owned.nodes) visit(node->hooks);
}

int traverse(PyObject* object, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(object));  // instances of a heap type hold a reference to it
  Py_VISIT(reinterpret_cast<PyTensor*>(object)->dict);
  int status = 0;
  try {
    for_each_owned_hook_list(reinterpret_cast<PyTensor*>(object), [&](const std::vector<GradHook>& hooks) {
      for (const GradHook& hook : hooks)
        if (const auto* python_hook = hook.target<PythonHook>(); python_hook && status == 0)
          status = visit(python_hook->function.get(), arg);
    });
  } catch (const std::bad_alloc&) {
    // Reporting no reference is safe: the collector then keeps what this object holds.
  }
  return status;
}

// Breaks cycles through this object by dropping the Python hooks it owns (they can no longer
// run: the tensors they would run for are unreachable too). The tensor stays usable.
int clear(PyObject* object) {
  Py_CLEAR(reinterpret_cast<PyTensor*>(object)->dict);
  std::vector<GradHook> dropped;
  try {
    for_each_owned_hook_list(reinterpret_cast<PyTensor*>(object), [&](std::vector<GradHook>& hooks) {
      const auto python = std::stable_partition(hooks.begin(), hooks.end(),
                                                [](const GradHook& hook) { return !hook.target<PythonHook>(); });
      std::move(python, hooks.end(), std::back_inserter(dropped));
      hooks.erase(python, hooks.end());
    });
  } catch (const std::bad_alloc&) {
  }
  return 0;  // `dropped` releases the functions here, after every list is consistent again
}

void dealloc(PyObject* object) {
  auto* self = reinterpret_cast<PyTensor*>(object);
  PyObject_GC_UnTrack(object);  // releasing the tensor below may run Python code, and a collection
  if (self->registered_python_hooks) unpin_hook_holders(self);
  if (self->weakrefs) PyObject_ClearWeakRefs(object);
  Py_CLEAR(self->dict);
  if (self->tensor.defined()) self->tensor.impl()->python_object = nullptr;
  self->tensor.~Tensor();
  PyTypeObject* type = Py_TYPE(object);
  type->tp_free(object);
  Py_DECREF(type);
}

using BinaryOp = Tensor (*)(const Tensor&, const Tensor&);
using Work = int64_t (*)(const Tensor&, const Tensor&);
// Whether an op is given: a specialization rather than `op != nullptr`, which GCC's
// UndefinedBehaviorSanitizer instrumentation makes a non-constant expression.
template <BinaryOp op>
constexpr bool is_given = true;
template <>
constexpr bool is_given<nullptr> = false;

// A binary number slot: CPython calls it for `a op b` with either operand a tensor. The other
// operand may be a number (see operand()): `tensor op number` runs with_number (torch's rules
// for numbers), `number op tensor` runs reflected(tensor, number) where given (torch records
// its own ops for `number - tensor` and `number ** tensor`), op(number, tensor) otherwise.
template <BinaryOp op, BinaryOp reflected = nullptr, Work work = elementwise_work, BinaryOp with_number = op>
PyObject* binary_slot(PyObject* a, PyObject* b) {
  return guarded([&]() -> PyObject* {
    if (is_tensor(a)) {
      const Tensor& self = unwrap(a);
      if (is_tensor(b)) return wrap(releasing_gil(work(self, unwrap(b)), [&] { return op(self, unwrap(b)); }));
      const Tensor number = operand(b, self);
      if (!number.defined()) Py_RETURN_NOTIMPLEMENTED;
      return wrap(releasing_gil(work(self, number), [&] { return with_number(self, number); }));
    }
    const Tensor& self = unwrap(b);
    const Tensor number = operand(a, self);
    if (!number.defined()) Py_RETURN_NOTIMPLEMENTED;
    if constexpr (is_given<reflected>)
      return wrap(releasing_gil(work(number, self), [&] { return reflected(self, number); }));
    return wrap(releasing_gil(work(number, self), [&] { return op(number, self); }));
  }, nullptr);
}

using InplaceOp = Tensor& (*)(Tensor&, const Tensor&);

// `a op= b`: CPython calls it with `a` the tensor; the result is `a` itself.
template <InplaceOp op>
PyObject* inplace_slot(PyObject* a, PyObject* b) {
  return guarded([&]() -> PyObject* {
    Tensor self = unwrap(a);
    const Tensor other = operand(b, self);
    if (!other.defined()) Py_RETURN_NOTIMPLEMENTED;
    // A recorded in-place op gives `a` a new grad_fn, which the garbage collector may be
    // walking from another thread: only an unrecorded one runs without the GIL.
    const bool records = is_grad_enabled() && (self.requires_grad() || other.requires_grad());
    releasing_gil(records ? 0 : elementwise_work(self, other), [&]() -> Tensor& { return op(self, other); });
    return Py_NewRef(a);
  }, nullptr);
}

PyObject* power_slot(PyObject* a, PyObject* b, PyObject* modulo) {
  if (modulo != Py_None) Py_RETURN_NOTIMPLEMENTED;
  return binary_slot<pow, rpow, elementwise_work, pow_number>(a, b);
}

PyObject* negative_slot(PyObject* a) {
  return guarded([&] { return wrap(releasing_gil(elementwise_work(unwrap(a)), [&] { return neg(unwrap(a)); })); },
                 nullptr);
}

int bool_slot(PyObject* a) {
  return guarded([&] {
    const Tensor& t = unwrap(a);
    TG_CHECK(t.numel() == 1, "Boolean value of Tensor with ", t.numel() == 0 ? "no values" : "more than one value",
             " is ambiguous");
    return t.item() != 0 ? 1 : 0;
  }, -1);
}

// float() and int() of a one-element tensor (ValueError otherwise, as in torch); int() of
// an int64 is exact past 2^53 too.
PyObject* python_number(PyObject* a, bool integral) {
  return guarded([&]() -> PyObject* {
    const Tensor& t = unwrap(a);
    TG_CHECK_AS(ValueError, t.numel() == 1, "only one element tensors can be converted to Python scalars (got ",
                t.numel(), " elements)");
    if (integral && t.dtype() == DType::Int64) return PyLong_FromLongLong(*t.data<int64_t>());
    return integral ? PyLong_FromDouble(t.item()) : PyFloat_FromDouble(t.item());
  }, nullptr);
}

PyObject* float_slot(PyObject* a) { return python_number(a, false); }

PyObject* int_slot(PyObject* a) { return python_number(a, true); }

PyObject* index_slot(PyObject* a) {
  const Tensor& t = unwrap(a);
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Bool) {
    PyErr_SetString(PyExc_TypeError, "only integer tensors of a single element can be converted to an index");
    return nullptr;
  }
  return int_slot(a);
}

PyObject* richcompare(PyObject* a, PyObject* b, int how) {
  static constexpr Compare by_python_op[] = {Compare::Lt, Compare::Le, Compare::Eq,
                                             Compare::Ne, Compare::Gt, Compare::Ge};
  return guarded([&]() -> PyObject* {
    const Tensor other = operand(b, unwrap(a));
    if (!other.defined()) Py_RETURN_NOTIMPLEMENTED;
    const Compare comparison = by_python_op[how];
    return wrap(releasing_gil(elementwise_work(unwrap(a), other), [&] { return compare(unwrap(a), other, comparison); }));
  }, nullptr);
}

Py_hash_t hash(PyObject* a) { return _Py_HashPointer(a); }

Py_ssize_t length(PyObject* a) {
  const Tensor& t = unwrap(a);
  if (t.ndim() == 0) {
    PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
    return -1;
  }
  return static_cast<Py_ssize_t>(t.shape()[0]);
}

// --- attributes read in loops ---

PyObject* get_shape(PyObject* a, void*) {
  const Shape& shape = unwrap(a).shape();
  PyObject* tuple = PyTuple_New(shape.ndim());
  if (!tuple) return nullptr;
  for (int d = 0; d < shape.ndim(); ++d) PyTuple_SET_ITEM(tuple, d, PyLong_FromLongLong(shape[d]));
  return tuple;
}

PyObject* get_ndim(PyObject* a, void*) { return PyLong_FromLong(unwrap(a).ndim()); }
PyObject* get_requires_grad(PyObject* a, void*) { return PyBool_FromLong(unwrap(a).requires_grad()); }
PyObject* get_is_leaf(PyObject* a, void*) { return PyBool_FromLong(unwrap(a).is_leaf()); }
PyObject* get_grad(PyObject* a, void*) { return wrap(unwrap(a).grad()); }
PyObject* get_data(PyObject* a, void*) {
  return guarded([&] { return wrap(unwrap(a).detach()); }, nullptr);
}

int set_requires_grad(PyObject* a, PyObject* value, void*) {
  if (!value || !PyBool_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "requires_grad must be a bool");
    return -1;
  }
  return guarded([&] {
    Tensor t = unwrap(a);
    t.requires_grad_(value == Py_True);
    return 0;
  }, -1);
}

int set_grad(PyObject* a, PyObject* value, void*) {
  return guarded([&] {
    Tensor self = unwrap(a);
    if (!value || value == Py_None) {
      self.set_grad(Tensor());
      return 0;
    }
    TG_CHECK_AS(TypeError, is_tensor(value), "assigned grad expected to be a Tensor or None but got grad of type ",
                Py_TYPE(value)->tp_name);
    const Tensor& grad = unwrap(value);
    TG_CHECK(grad.impl() != self.impl(), "can't assign Variable as its own grad");
    TG_CHECK(grad.shape() == self.shape() && grad.dtype() == self.dtype(),
             "assigned grad has data of a different size or type: ", grad.shape().str(), " ",
             dtype_name(grad.dtype()), " for a tensor of ", self.shape().str(), " ", dtype_name(self.dtype()));
    self.set_grad(grad);
    return 0;
  }, -1);
}

PyGetSetDef getset[] = {
    {"shape", get_shape, nullptr, "The sizes of the dims, as a tuple.", nullptr},
    {"ndim", get_ndim, nullptr, "The number of dims.", nullptr},
    {"requires_grad", get_requires_grad, set_requires_grad, "Whether backward computes a gradient for this tensor.", nullptr},
    {"is_leaf", get_is_leaf, nullptr, "True unless the tensor is the result of a recorded op.", nullptr},
    {"grad", get_grad, set_grad, "The gradient accumulated by backward (leaves and retain_grad), or None.", nullptr},
    {"data", get_data, nullptr, "The tensor detached from the graph, sharing its buffer.", nullptr},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// --- the buffer protocol, so numpy and memoryview read the buffer directly ---

// What a view of the buffer holds: its layout, and a reference to the storage, so that the
// buffer counts as shared while the view lives and zero_ writes its zeros at once (a lazily
// zeroed buffer written through the view would have those writes wiped by the deferred zeros,
// or overwritten by the next backward).
struct ExportedBuffer {
  std::shared_ptr<Storage> storage;
  Py_ssize_t shape[Shape::kMaxDims];
  Py_ssize_t strides[Shape::kMaxDims];
};

int get_buffer(PyObject* a, Py_buffer* view, int flags) {
  const Tensor& t = unwrap(a);
  if (t.requires_grad() && is_grad_enabled()) {  // as numpy() does
    PyErr_SetString(PyExc_RuntimeError,
                    "Can't export the buffer of a Tensor that requires grad. Use tensor.detach() instead.");
    return -1;
  }
  static const char* formats[] = {"f", "d", "q", "?"};
  auto* exported = new (std::nothrow) ExportedBuffer{t.storage(), {}, {}};
  if (!exported) {
    PyErr_NoMemory();
    return -1;
  }
  Py_ssize_t stride = static_cast<Py_ssize_t>(itemsize(t.dtype()));
  for (int d = t.ndim(); d-- > 0;) {
    exported->shape[d] = t.shape()[d];
    exported->strides[d] = stride;
    stride *= t.shape()[d];
  }
  view->obj = Py_NewRef(a);
  view->buf = t.raw_data();  // writes the zeros of a lazily zeroed buffer
  view->len = static_cast<Py_ssize_t>(t.numel() * itemsize(t.dtype()));
  view->readonly = 0;
  view->itemsize = static_cast<Py_ssize_t>(itemsize(t.dtype()));
  view->format = (flags & PyBUF_FORMAT) ? const_cast<char*>(formats[static_cast<int>(t.dtype())]) : nullptr;
  view->ndim = t.ndim();
  view->shape = (flags & PyBUF_ND) ? exported->shape : nullptr;
  view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? exported->strides : nullptr;
  view->suboffsets = nullptr;
  view->internal = exported;
  return 0;
}

void release_buffer(PyObject*, Py_buffer* view) { delete static_cast<ExportedBuffer*>(view->internal); }

PyType_Slot slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(new_tensor_object)},
    {Py_tp_dealloc, reinterpret_cast<void*>(dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(clear)},
    {Py_tp_doc, const_cast<char*>("A tensor: a shape, a dtype and a contiguous buffer, with autograd.")},
    {Py_tp_getset, getset},
    {Py_tp_richcompare, reinterpret_cast<void*>(richcompare)},
    {Py_tp_hash, reinterpret_cast<void*>(hash)},
    {Py_nb_add, reinterpret_cast<void*>(binary_slot<add>)},
    {Py_nb_subtract, reinterpret_cast<void*>(binary_slot<sub, rsub>)},
    {Py_nb_multiply, reinterpret_cast<void*>(binary_slot<mul>)},
    {Py_nb_true_divide, reinterpret_cast<void*>(binary_slot<div>)},
    {Py_nb_power, reinterpret_cast<void*>(power_slot)},
    {Py_nb_matrix_multiply, reinterpret_cast<void*>(binary_slot<matmul, nullptr, matmul_work>)},
    {Py_nb_inplace_add, reinterpret_cast<void*>(inplace_slot<add_>)},
    {Py_nb_inplace_subtract, reinterpret_cast<void*>(inplace_slot<sub_>)},
    {Py_nb_inplace_multiply, reinterpret_cast<void*>(inplace_slot<mul_>)},
    {Py_nb_inplace_true_divide, reinterpret_cast<void*>(inplace_slot<div_>)},
    {Py_nb_negative, reinterpret_cast<void*>(negative_slot)},
    {Py_nb_bool, reinterpret_cast<void*>(bool_slot)},
    {Py_nb_float, reinterpret_cast<void*>(float_slot)},
    {Py_nb_int, reinterpret_cast<void*>(int_slot)},
    {Py_nb_index, reinterpret_cast<void*>(index_slot)},
    {Py_mp_length, reinterpret_cast<void*>(length)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(get_buffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(release_buffer)},
    {0, nullptr},
};

PyMemberDef members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PyTensor, weakrefs), READONLY, nullptr},
    {"__dictoffset__", T_PYSSIZET, offsetof(PyTensor, dict), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

}  // namespace

void register_python_hook(Tensor tensor, PyObject* function) {
  tensor.register_hook(PythonHook(function));
  auto* self = static_cast<PyTensor*>(tensor.impl()->python_object);
  RegisteredHooks& registered = hooks_by_object[self];
  self->registered_python_hooks = true;
  ++pinning_changes;
  if (tensor.is_leaf()) {  // where Tensor::register_hook put it
    registered.on_leaf = true;
    return;
  }
  const std::shared_ptr<Node>& node = tensor.grad_fn();
  if (std::none_of(registered.nodes.begin(), registered.nodes.end(),
                   [&](const std::weak_ptr<Node>& held) { return same_object(held, node); }))
    registered.nodes.emplace_back(node);
}

uint64_t objects_walked_by_collector() { return walked_by_collector; }

bool add_tensor_type(PyObject* module) {
  static PyType_Slot all_slots[sizeof(slots) / sizeof(slots[0]) + 1];
  size_t n = 0;
  for (; slots[n].slot != 0; ++n) all_slots[n] = slots[n];
  all_slots[n++] = {Py_tp_members, members};
  all_slots[n] = {0, nullptr};
  static PyType_Spec spec = {"tapegrad.Tensor", sizeof(PyTensor), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
                                all_slots};
  tensor_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
  if (!tensor_type) return false;
  Py_INCREF(tensor_type);  // the module's reference; tensor_type keeps its own for the process
  return PyModule_AddObject(module, "Tensor", reinterpret_cast<PyObject*>(tensor_type)) == 0;
}

}  // namespace tg::python
