// Binding of the tensor factories: tensor, from_numpy, arange, zeros, ones, randn, ..., and
// the Tensor(...) constructor.
#include <algorithm>
#include <limits>

#include "bindings.h"

namespace tg::python {
namespace {

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
    int overflow = 0;
    const int64_t dim = PyLong_AsLongLongAndOverflow(py::int_(py::reinterpret_borrow<py::object>(size)).ptr(), &overflow);
    TG_CHECK_AS(tg::TypeError, !overflow, op, "(): size ", py::str(size).cast<std::string>(),
                " does not fit in an int64");
    TG_CHECK(dim >= 0, op, "(): Trying to create tensor with negative dimension ", dim, ": ",
             py::str(sizes).cast<std::string>());
    shape.push_back(dim);
  }
  return shape;
}

std::optional<DType> dtype_kwarg(const py::kwargs& kwargs, const char* op) {
  if (!kwargs.contains("dtype") || kwargs["dtype"].is_none()) return std::nullopt;
  const py::object dtype = kwargs["dtype"];
  TG_CHECK_AS(tg::TypeError, py::isinstance<DType>(dtype), op, "(): argument 'dtype' must be tapegrad.dtype, not ",
              type_name(dtype));
  return dtype.cast<DType>();
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
  return finish_factory(make(parse_size(args, kwargs, op), dtype_kwarg(kwargs, op).value_or(DType::Float32)), kwargs, op);
}

Tensor uninitialised(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }

// zeros_like(t) and friends: t's shape, and t's dtype unless dtype= says otherwise.
template <Tensor (*make)(const Shape&, DType)>
Tensor like_factory(const char* op, const Tensor& like, const py::kwargs& kwargs) {
  return finish_factory(make(like.shape(), dtype_kwarg(kwargs, op).value_or(like.dtype())), kwargs, op);
}

// Whether a fill value is an integer: a Python int or numpy's (a bool is not).
bool is_integer(py::handle value) {
  return !PyBool_Check(value.ptr()) && !is_tensor(value) && PyIndex_Check(value.ptr());
}

// The dtype torch infers from a Python fill value: bool, int64 or float32.
DType dtype_of_number(py::handle value) {
  if (PyBool_Check(value.ptr())) return DType::Bool;
  if (is_integer(value)) return DType::Int64;
  return DType::Float32;
}

// full(): an integer fill value goes in exact (a double holds integers only up to 2^53).
Tensor full(const Shape& shape, py::handle value, DType dtype) {
  if (is_integer(value)) {
    const auto integer = py::reinterpret_steal<py::object>(PyNumber_Index(value.ptr()));
    if (!integer) throw py::error_already_set();
    int overflow = 0;
    const long long exact = PyLong_AsLongLongAndOverflow(integer.ptr(), &overflow);
    if (overflow == 0) return tg::full_integer(shape, exact, dtype);
    TG_CHECK(is_floating(dtype), "full(): value ", py::str(value).cast<std::string>(),
             " cannot be converted to type int64_t without overflow");
  }
  return tg::full(shape, value.cast<double>(), dtype);
}

// The sizes of normal(), randint(): a tuple or list, given positionally or as size=.
Shape size_argument(py::handle size, const char* op) {
  TG_CHECK_AS(tg::TypeError, py::isinstance<py::sequence>(size), op, "(): size must be a tuple of ints, not ",
              type_name(size));
  return parse_size(py::args(py::make_tuple(size)), py::kwargs(), op);
}

// tg.tensor(data): a copy of a tensor, a number, or anything numpy can make an array of.
// Python floats become float32 and ints int64, as in torch; a numpy array keeps its dtype.
Tensor tensor_from(py::handle data, std::optional<DType> dtype) {
  if (is_tensor(data)) return tg::clone(tg::to_dtype(data.cast<Tensor>().detach(), dtype.value_or(data.cast<Tensor>().dtype())));
  PyObject* object = data.ptr();
  if (PyFloat_Check(object)) return tg::scalar_tensor(PyFloat_AS_DOUBLE(object), dtype.value_or(DType::Float32));
  if (PyBool_Check(object)) return tg::scalar_tensor(object == Py_True, dtype.value_or(DType::Bool));
  if (PyLong_Check(object)) {
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
    TG_CHECK_AS(tg::ValueError, overflow == 0, "tensor(): Overflow when unpacking long: ",
                py::str(data).cast<std::string>(), " does not fit in int64");
    return tg::to_dtype(tg::from_values<int64_t>({value}, Shape{}, DType::Int64), dtype.value_or(DType::Int64));
  }
  TG_CHECK_AS(tg::TypeError, !PyUnicode_Check(object) && !PyBytes_Check(object),
              "tensor(): new(): invalid data type '", py::str(py::type::of(data)).cast<std::string>(), "'");
  const bool from_array = py::isinstance<py::array>(data);
  py::array array;
  try {
    array = py::module_::import("numpy").attr("asarray")(data);
  } catch (py::error_already_set& error) {
    throw tg::ValueError(tg::detail::concat("tensor(): could not build a tensor from the data: ", error.what()));
  }
  // Python ints past int64 make numpy pick uint64, object or even float64: torch calls that
  // overflow, so look for them (in nested sequences, with an explicit stack).
  if (!from_array && array.dtype().kind() != 'b' && array.dtype().kind() != 'i') {
    std::vector<py::handle> pending{data};
    while (!pending.empty()) {
      const py::handle item = pending.back();
      pending.pop_back();
      if (PyList_Check(item.ptr()) || PyTuple_Check(item.ptr())) {
        for (py::handle element : item) pending.push_back(element);
      } else if (PyLong_Check(item.ptr()) && !PyBool_Check(item.ptr())) {
        int overflow = 0;
        PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
        TG_CHECK_AS(tg::ValueError, overflow == 0, "tensor(): Overflow when unpacking long: ",
                    py::str(item).cast<std::string>(), " does not fit in int64");
      }
    }
  }
  // tapegrad has no uint64 (torch has): its values past int64 would wrap around in int64.
  if (array.dtype().kind() == 'u' && array.dtype().itemsize() == 8 && array.size() > 0) {
    const py::object largest = array.attr("max")();
    TG_CHECK_AS(tg::ValueError, largest.cast<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()),
                "tensor(): the uint64 value ", py::str(largest).cast<std::string>(),
                " does not fit in int64, and tapegrad has no uint64 dtype");
  }
  const std::optional<DType> inferred = dtype_of_numpy(array.dtype());
  TG_CHECK_AS(tg::TypeError, inferred, "tensor(): can't convert data of numpy dtype ",
              py::str(array.dtype()).cast<std::string>(), " to a tensor; expected numbers or bools");
  DType target = dtype.value_or(*inferred);
  if (!dtype && !from_array && target == DType::Float64) target = DType::Float32;  // Python floats
  const Tensor source = from_numpy(array.attr("astype")(numpy_dtype(*inferred), py::arg("order") = "C"));
  return tg::clone(tg::to_dtype(source, target));
}

// tapegrad.Tensor(...), as torch's legacy constructor: Tensor() is an empty float32 tensor,
// Tensor(2, 3) an uninitialised float32 one of those sizes, Tensor(data) float32 data (a
// sequence or an array, whatever its numbers), and Tensor(t) a tensor sharing t's buffer and
// history (an alias, as torch's, keeping t's dtype).
Tensor legacy_tensor(const py::args& args, const py::kwargs& kwargs) {
  for (auto item : kwargs)
    throw tg::TypeError(tg::detail::concat("new(): Tensor() got an unexpected keyword argument '",
                                           py::str(item.first).cast<std::string>(),
                                           "'; tg.tensor(data, dtype=..., requires_grad=...) takes it"));
  if (args.empty()) return Tensor::empty(Shape{0}, DType::Float32);
  const auto is_size = [](py::handle arg) {
    return PyIndex_Check(arg.ptr()) && !PyBool_Check(arg.ptr()) && !is_tensor(arg) && !PySequence_Check(arg.ptr());
  };
  if (std::all_of(args.begin(), args.end(), is_size)) return Tensor::empty(parse_size(args, kwargs, "new"), DType::Float32);
  TG_CHECK_AS(tg::TypeError, args.size() == 1, "new() received an invalid combination of arguments: expected (), ",
              "(int... sizes), (sequence data) or (Tensor other), but got ", args.size(), " arguments starting with ",
              type_name(args[0]));
  const py::handle data = args[0];
  if (is_tensor(data)) {
    const Tensor& other = unwrap(data.ptr());
    return tg::view(other, std::vector<int64_t>(other.shape().begin(), other.shape().end()));
  }
  TG_CHECK_AS(tg::TypeError, PySequence_Check(data.ptr()) || py::isinstance<py::array>(data),
              "new(): data must be a sequence (got ", type_name(data), ")");
  return tensor_from(data, DType::Float32);
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
  const DType dtype = dtype_kwarg(kwargs, "arange").value_or(any_float ? DType::Float32 : DType::Int64);
  return finish_factory(tg::arange(values[0], values[1], values[2], dtype), kwargs, "arange");
}

}  // namespace

PyObject* new_tensor_object(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  try {
    return wrap_as(type, legacy_tensor(py::reinterpret_borrow<py::args>(args),
                                       kwargs ? py::reinterpret_borrow<py::kwargs>(kwargs) : py::kwargs()));
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (py::builtin_exception& error) {
    error.set_error();
  } catch (...) {
    set_error_from_exception();
  }
  return nullptr;
}

void bind_factories(py::module_& m) {
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
  m.def("rand", [](const py::args& args, const py::kwargs& kwargs) { return filled_factory<tg::rand>("rand", args, kwargs); });
  m.def("empty", [](const py::args& args, const py::kwargs& kwargs) { return filled_factory<uninitialised>("empty", args, kwargs); });
  m.def("zeros_like", [](const Tensor& like, const py::kwargs& kwargs) { return like_factory<tg::zeros>("zeros_like", like, kwargs); });
  m.def("ones_like", [](const Tensor& like, const py::kwargs& kwargs) { return like_factory<tg::ones>("ones_like", like, kwargs); });
  m.def("empty_like", [](const Tensor& like, const py::kwargs& kwargs) { return like_factory<uninitialised>("empty_like", like, kwargs); });
  m.def("randn_like", [](const Tensor& like, const py::kwargs& kwargs) { return like_factory<tg::randn>("randn_like", like, kwargs); });
  m.def("rand_like", [](const Tensor& like, const py::kwargs& kwargs) { return like_factory<tg::rand>("rand_like", like, kwargs); });
  m.def("full", [](py::handle size, py::handle fill_value, const py::kwargs& kwargs) {
    TG_CHECK_AS(tg::TypeError, PyNumber_Check(fill_value.ptr()), "full(): fill_value must be a number, not ", type_name(fill_value));
    const DType dtype = dtype_kwarg(kwargs, "full").value_or(dtype_of_number(fill_value));
    return finish_factory(full(size_argument(size, "full"), fill_value, dtype), kwargs, "full");
  }, py::arg("size"), py::arg("fill_value"));
  m.def("normal", [](double mean, double std, py::handle size, const py::kwargs& kwargs) {
    const DType dtype = dtype_kwarg(kwargs, "normal").value_or(DType::Float32);
    return finish_factory(tg::normal(mean, std, size_argument(size, "normal"), dtype), kwargs, "normal");
  }, py::arg("mean"), py::arg("std"), py::arg("size"));
  m.def("randint", [](const py::args& args, const py::kwargs& kwargs) {
    // randint(high, size) or randint(low, high, size), as torch
    TG_CHECK_AS(tg::TypeError, args.size() == 2 || args.size() == 3 || (args.size() <= 2 && kwargs.contains("size")),
                "randint() expects (high, size) or (low, high, size)");
    std::vector<py::handle> values(args.begin(), args.end());
    py::handle size = kwargs.contains("size") ? py::handle(kwargs["size"]) : values.back();
    if (!kwargs.contains("size")) values.pop_back();
    const int64_t low = values.size() == 2 ? values[0].cast<int64_t>() : 0;
    const int64_t high = values.back().cast<int64_t>();
    const DType dtype = dtype_kwarg(kwargs, "randint").value_or(DType::Int64);
    return finish_factory(tg::randint(low, high, size_argument(size, "randint"), dtype), kwargs, "randint");
  });
  m.def("manual_seed", [](int64_t seed) { tg::manual_seed(static_cast<uint64_t>(seed)); }, py::arg("seed"));
}

}  // namespace tg::python
