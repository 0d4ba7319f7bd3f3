// tapegrad._core: the Python binding. The class a user holds is the C++ TensorImpl itself,
// so an operator is one call into C++; this file only converts arguments and results.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "python_tensor.h"
#include "tapegrad/tapegrad.h"

namespace py = pybind11;
using tg::DType;
using tg::Node;
using tg::Shape;
using tg::Tensor;
using tg::TensorImpl;

// A Tensor crosses into Python as the tapegrad.Tensor object that holds it (one object per
// tensor, so x.grad is x.grad); an undefined tensor is None.
namespace pybind11::detail {
template <>
struct type_caster<Tensor> {
  PYBIND11_TYPE_CASTER(Tensor, const_name("Tensor"));
  bool load(handle source, bool) {
    if (!tg::python::is_tensor(source.ptr())) return false;
    value = tg::python::unwrap(source.ptr());
    return true;
  }
  static handle cast(const Tensor& tensor, return_value_policy, handle) {
    PyObject* object = tg::python::wrap(tensor);
    if (!object) throw error_already_set();
    return object;
  }
};
}  // namespace pybind11::detail

namespace {

bool is_tensor(py::handle object) { return tg::python::is_tensor(object.ptr()); }
Tensor operand(py::handle other, const Tensor& like) { return tg::python::operand(other.ptr(), like); }

using BinaryOp = Tensor (*)(const Tensor&, const Tensor&);

// tg.add(a, b) and friends: either argument may be a number, one must be a tensor.
template <BinaryOp op>
Tensor binary_function(const char* name, py::handle a, py::handle b) {
  Tensor x = is_tensor(a) ? a.cast<Tensor>() : Tensor();
  Tensor y = is_tensor(b) ? b.cast<Tensor>() : Tensor();
  if (x.defined() && !y.defined()) y = operand(b, x);
  if (y.defined() && !x.defined()) x = operand(a, y);
  if (!x.defined() || !y.defined())
    throw py::type_error(tg::detail::concat(name, "(): expected tensors or numbers, got ",
                                            py::str(py::type::of(a)).cast<std::string>(), " and ",
                                            py::str(py::type::of(b)).cast<std::string>()));
  return op(x, y);
}

// Sizes given as ints (zeros(2, 3)), as one sequence (zeros((2, 3))), or as size=.
Shape parse_size(const py::args& args, const py::kwargs& kwargs, const char* op) {
  py::object sizes = args;
  if (kwargs.contains("size")) {
    TG_CHECK_AS(tg::TypeError, args.empty(), op, "(): size given both positionally and as size=");
    sizes = kwargs["size"];
  } else if (args.size() == 1 && py::isinstance<py::sequence>(args[0])) {
    sizes = args[0];
  }
  Shape shape;
  if (!py::isinstance<py::sequence>(sizes)) sizes = py::make_tuple(sizes);
  for (py::handle size : sizes) {
    TG_CHECK_AS(tg::TypeError, PyIndex_Check(size.ptr()) && !PyBool_Check(size.ptr()), op,
                "(): size must be a tuple of ints, but got an element of type ",
                py::str(py::type::of(size)).cast<std::string>());
    const int64_t dim = size.cast<int64_t>();
    TG_CHECK(dim >= 0, op, "(): Trying to create tensor with negative dimension ", dim, ": ",
             py::str(sizes).cast<std::string>());
    shape.push_back(dim);
  }
  return shape;
}

std::optional<DType> dtype_kwarg(const py::kwargs& kwargs) {
  if (!kwargs.contains("dtype") || kwargs["dtype"].is_none()) return std::nullopt;
  return kwargs["dtype"].cast<DType>();
}

bool requires_grad_kwarg(const py::kwargs& kwargs) {
  return kwargs.contains("requires_grad") && kwargs["requires_grad"].cast<bool>();
}

// Applies the keywords every factory takes, and rejects any other.
Tensor finish_factory(Tensor tensor, const py::kwargs& kwargs, const char* op) {
  for (auto item : kwargs) {
    const std::string key = item.first.cast<std::string>();
    TG_CHECK_AS(tg::TypeError, key == "dtype" || key == "requires_grad" || key == "size", op,
                "() got an unexpected keyword argument '", key, "'");
  }
  if (requires_grad_kwarg(kwargs)) tensor.requires_grad_(true);
  return tensor;
}

template <Tensor (*make)(const Shape&, DType)>
Tensor filled_factory(const char* op, const py::args& args, const py::kwargs& kwargs) {
  return finish_factory(make(parse_size(args, kwargs, op), dtype_kwarg(kwargs).value_or(DType::Float32)), kwargs, op);
}

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Bool: return py::dtype::of<bool>();
  }
  TG_ASSERT(false);
}

std::optional<DType> dtype_of_numpy(const py::dtype& dtype) {
  if (dtype.is(py::dtype::of<float>())) return DType::Float32;
  if (dtype.is(py::dtype::of<double>())) return DType::Float64;
  if (dtype.is(py::dtype::of<int64_t>())) return DType::Int64;
  if (dtype.is(py::dtype::of<bool>())) return DType::Bool;
  const char kind = dtype.kind();
  if (kind == 'f') return dtype.itemsize() <= 4 ? DType::Float32 : DType::Float64;
  if (kind == 'i' || kind == 'u') return DType::Int64;
  return std::nullopt;
}

// A numpy array over the tensor's buffer; the array keeps the buffer alive.
py::array as_numpy(const Tensor& tensor) {
  auto* keep_alive = new std::shared_ptr<tg::Storage>(tensor.storage());
  py::capsule owner(keep_alive, [](void* p) { delete static_cast<std::shared_ptr<tg::Storage>*>(p); });
  return py::array(numpy_dtype(tensor.dtype()), std::vector<py::ssize_t>(tensor.shape().begin(), tensor.shape().end()),
                   {}, tensor.raw_data(), owner);
}

Tensor from_numpy(const py::array& array) {
  const std::optional<DType> dtype = dtype_of_numpy(array.dtype());
  TG_CHECK_AS(tg::TypeError, dtype && array.dtype().is(numpy_dtype(*dtype)),
              "from_numpy: can't convert np.ndarray of type ", py::str(array.dtype()).cast<std::string>(),
              ". The only supported types are: float64, float32, int64 and bool.");
  TG_CHECK_AS(tg::ValueError, array.flags() & py::array::c_style,
              "from_numpy: the array must be C-contiguous; use np.ascontiguousarray(a) or tg.tensor(a) to copy it");
  TG_CHECK_AS(tg::ValueError, array.dtype().byteorder() != '>',
              "from_numpy: big-endian arrays are not supported; use a.astype(a.dtype.newbyteorder('='))");
  Shape shape(array.shape(), array.shape() + array.ndim());
  auto owner = std::shared_ptr<void>(new py::object(array), [](void* p) {
    py::gil_scoped_acquire gil;  // the last reference may drop on a thread without the GIL
    delete static_cast<py::object*>(p);
  });
  auto storage = tg::Storage::wrap(const_cast<void*>(array.data()), array.nbytes(), std::move(owner));
  return Tensor(std::make_shared<TensorImpl>(shape, *dtype, std::move(storage)));
}

// tg.tensor(data): a copy of a tensor, a number, or anything numpy can make an array of.
// Python floats become float32 and ints int64, as in torch; a numpy array keeps its dtype.
Tensor tensor_from(py::handle data, std::optional<DType> dtype) {
  if (is_tensor(data)) return tg::clone(tg::to_dtype(data.cast<Tensor>().detach(), dtype.value_or(data.cast<Tensor>().dtype())));
  PyObject* object = data.ptr();
  if (PyFloat_Check(object)) return tg::scalar_tensor(PyFloat_AS_DOUBLE(object), dtype.value_or(DType::Float32));
  if (PyBool_Check(object)) return tg::scalar_tensor(object == Py_True, dtype.value_or(DType::Bool));
  if (PyLong_Check(object)) return tg::scalar_tensor(data.cast<int64_t>(), dtype.value_or(DType::Int64));
  TG_CHECK_AS(tg::TypeError, !PyUnicode_Check(object) && !PyBytes_Check(object),
              "tensor(): new(): invalid data type '", py::str(py::type::of(data)).cast<std::string>(), "'");
  const bool from_array = py::isinstance<py::array>(data);
  py::array array;
  try {
    array = py::module_::import("numpy").attr("asarray")(data);
  } catch (py::error_already_set& error) {
    throw tg::ValueError(tg::detail::concat("tensor(): could not build a tensor from the data: ", error.what()));
  }
  const std::optional<DType> inferred = dtype_of_numpy(array.dtype());
  TG_CHECK_AS(tg::TypeError, inferred, "tensor(): can't convert data of numpy dtype ",
              py::str(array.dtype()).cast<std::string>(), " to a tensor; expected numbers or bools");
  DType target = dtype.value_or(*inferred);
  if (!dtype && !from_array && target == DType::Float64) target = DType::Float32;  // Python floats
  const Tensor source = from_numpy(array.attr("astype")(numpy_dtype(*inferred), py::arg("order") = "C"));
  return tg::clone(tg::to_dtype(source, target));
}

py::object item(const Tensor& tensor) {
  const double value = tensor.item();
  switch (tensor.dtype()) {
    case DType::Int64: return py::int_(static_cast<int64_t>(value));
    case DType::Bool: return py::bool_(value != 0);
    default: return py::float_(value);
  }
}

Tensor arange(py::args args, const py::kwargs& kwargs) {
  TG_CHECK_AS(tg::TypeError, args.size() >= 1 && args.size() <= 3, "arange() takes 1 to 3 positional arguments");
  bool any_float = false;
  double values[3] = {0, 0, 1};
  for (size_t i = 0; i < args.size(); ++i) {
    py::handle arg = args[i];
    if (is_tensor(arg)) arg = item(arg.cast<Tensor>()).release();
    TG_CHECK_AS(tg::TypeError, PyFloat_Check(arg.ptr()) || PyLong_Check(arg.ptr()),
                "arange(): argument ", i, " must be a number, not ", py::str(py::type::of(arg)).cast<std::string>());
    any_float |= PyFloat_Check(arg.ptr()) != 0;
    values[i] = arg.cast<double>();
  }
  if (args.size() == 1) std::swap(values[0], values[1]);  // arange(end)
  const DType dtype = dtype_kwarg(kwargs).value_or(any_float ? DType::Float32 : DType::Int64);
  return finish_factory(tg::arange(values[0], values[1], values[2], dtype), kwargs, "arange");
}

void backward(const Tensor& self, std::optional<Tensor> gradient, std::optional<bool> retain_graph) {
  py::gil_scoped_release release;  // the engine touches C++ objects only
  self.backward(gradient.value_or(Tensor()), retain_graph.value_or(false));
}

}  // namespace

// Adds a method to tapegrad.Tensor (a type pybind11 does not own): pybind11 converts the
// arguments, the Tensor type_caster above converts self.
template <class Function, class... Extra>
void def_method(const char* name, Function&& function, const Extra&... extra) {
  py::handle type(reinterpret_cast<PyObject*>(tg::python::tensor_type));
  py::setattr(type, name, py::cpp_function(std::forward<Function>(function), py::name(name), py::is_method(type),
                                           py::sibling(py::getattr(type, name, py::none())), extra...));
}

template <class Getter>
void def_property(const char* name, Getter&& getter, const char* doc) {
  py::handle type(reinterpret_cast<PyObject*>(tg::python::tensor_type));
  py::setattr(type, name, py::module_::import("builtins").attr("property")(
                              py::cpp_function(std::forward<Getter>(getter), py::is_method(type)), py::none(), py::none(), doc));
}

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

  py::enum_<DType>(m, "dtype")
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("int64", DType::Int64)
      .value("bool", DType::Bool)
      .def("__repr__", [](DType dtype) { return std::string("tapegrad.") + tg::dtype_name(dtype); })
      .def("__str__", [](DType dtype) { return std::string("tapegrad.") + tg::dtype_name(dtype); })
      .def_property_readonly("is_floating_point", [](DType dtype) { return tg::is_floating(dtype); })
      .def_property_readonly("itemsize", [](DType dtype) { return tg::itemsize(dtype); });

  py::class_<Node, std::shared_ptr<Node>>(m, "Node", "A recorded op: the tape entry behind a tensor's grad_fn.")
      .def("name", &Node::name)
      .def_property_readonly("next_functions",
                             [](const Node& node) {
                               py::list edges;
                               for (const auto& next : node.next) edges.append(py::make_tuple(next, 0));
                               return py::tuple(edges);
                             })
      .def("__repr__", [](const Node& node) {
        return tg::detail::concat("<", node.name(), " object at ", static_cast<const void*>(&node), ">");
      });

  // Tensor: attributes and methods beyond the hot ones in python_tensor.cpp
  def_property("dtype", [](const Tensor& t) { return t.dtype(); }, "The element type.");
  def_property("grad_fn", [](const Tensor& t) { return t.grad_fn(); }, "The node that made this tensor, or None for a leaf.");
  def_property("retains_grad", [](const Tensor& t) { return t.impl()->retains_grad; }, "Whether backward fills .grad of this non-leaf.");
  def_method("dim", [](const Tensor& t) { return t.ndim(); });
  def_method("numel", [](const Tensor& t) { return t.numel(); });
  def_method("size", [](const Tensor& t, std::optional<int64_t> dim) -> py::object {
    if (dim) return py::int_(t.size(*dim));
    return py::tuple(py::cast(std::vector<int64_t>(t.shape().begin(), t.shape().end())));
  }, py::arg("dim") = py::none());
  def_method("requires_grad_", [](Tensor t, bool flag) { return t.requires_grad_(flag); }, py::arg("requires_grad") = true);
  def_method("retain_grad", [](Tensor t) { t.retain_grad(); });
  def_method("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()); });
  def_method("item", &item);
  def_method("tolist", [](const Tensor& t) { return as_numpy(t).attr("tolist")(); });
  def_method("numpy", [](const Tensor& t) {
    TG_CHECK(!t.requires_grad(), "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
    return as_numpy(t);
  });
  def_method("__array__", [](const Tensor& t, py::object dtype, py::object) {
    py::object array = as_numpy(t.detach());
    return dtype.is_none() ? array : array.attr("astype")(dtype);
  }, py::arg("dtype") = py::none(), py::arg("copy") = py::none());
  def_method("detach", [](const Tensor& t) { return t.detach(); });
  def_method("backward", &backward, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none());
  def_method("zero_", [](Tensor t) { return tg::zero_(t); });
  def_method("sum", &tg::sum);
  def_method("mean", &tg::mean);
  def_method("norm", &tg::norm);
  def_method("dot", &tg::dot);
  def_method("all", [](const Tensor& t) { return tg::scalar_tensor(tg::all(t), DType::Bool); });
  def_method("any", [](const Tensor& t) { return tg::scalar_tensor(tg::any(t), DType::Bool); });
  def_method("reshape", [](const Tensor& t, const py::args& args) {
    std::vector<int64_t> sizes;
    const py::sequence given = args.size() == 1 && py::isinstance<py::sequence>(args[0]) ? py::sequence(args[0]) : py::sequence(args);
    for (py::handle size : given) sizes.push_back(size.cast<int64_t>());
    return tg::reshape(t, sizes);
  });

  // functions
  m.def("tensor", [](py::handle data, std::optional<DType> dtype, bool requires_grad) {
         Tensor t = tensor_from(data, dtype);
         if (requires_grad) t.requires_grad_(true);
         return t;
       }, py::arg("data"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def("from_numpy", &from_numpy, py::arg("array"));
  m.def("arange", &arange);
  m.def("zeros", [](const py::args& args, const py::kwargs& kwargs) { return filled_factory<tg::zeros>("zeros", args, kwargs); });
  m.def("ones", [](const py::args& args, const py::kwargs& kwargs) { return filled_factory<tg::ones>("ones", args, kwargs); });
  m.def("randn", [](const py::args& args, const py::kwargs& kwargs) { return filled_factory<tg::randn>("randn", args, kwargs); });
  m.def("manual_seed", [](int64_t seed) { tg::manual_seed(static_cast<uint64_t>(seed)); }, py::arg("seed"));
  m.def("add", [](py::handle a, py::handle b) { return binary_function<tg::add>("add", a, b); });
  m.def("sub", [](py::handle a, py::handle b) { return binary_function<tg::sub>("sub", a, b); });
  m.def("mul", [](py::handle a, py::handle b) { return binary_function<tg::mul>("mul", a, b); });
  m.def("div", [](py::handle a, py::handle b) { return binary_function<tg::div>("div", a, b); });
  m.def("pow", [](py::handle a, py::handle b) { return binary_function<tg::pow>("pow", a, b); });
  m.def("neg", &tg::neg);
  m.def("dot", &tg::dot);
  m.def("sum", &tg::sum);
  m.def("mean", &tg::mean);
  m.def("norm", &tg::norm);
  m.def("is_grad_enabled", &tg::is_grad_enabled);
  m.def("set_grad_enabled", &tg::set_grad_enabled, py::arg("mode"));
  m.def("run_backward", [](const std::vector<Tensor>& outputs, const std::vector<std::optional<Tensor>>& grad_outputs,
                           bool retain_graph, const std::vector<Tensor>& inputs) {
    std::vector<Tensor> grads;
    for (const auto& grad : grad_outputs) grads.push_back(grad.value_or(Tensor()));
    py::gil_scoped_release release;
    return tg::run_backward(outputs, grads, retain_graph, inputs);
  });
  m.def("pool_stats", [] {
    const tg::PoolStats stats = tg::pool_stats();
    py::dict result;
    result["os_allocations"] = stats.os_allocations;
    result["reuses"] = stats.reuses;
    result["cached_bytes"] = stats.cached_bytes;
    return result;
  });
}
