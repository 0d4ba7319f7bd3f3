// Binding of the shape ops, as functions and Tensor methods with torch's signatures, and of
// indexing: Python's index forms (ints, slices, None, Ellipsis, lists, ranges, arrays,
// tensors) become IndexSpecs here; tg::index does the work.
#include "bindings.h"
#include "tapegrad/ops/index.h"

namespace tg::python {
namespace {

// An int argument: a Python int or anything with __index__ (numpy ints, one-element int64
// tensors), not a bool.
int64_t int_arg(py::handle value, const char* op, const char* name) {
  TG_CHECK_AS(TypeError, PyIndex_Check(value.ptr()) && !PyBool_Check(value.ptr()), op, "(): argument '", name,
              "' must be an int, not ", type_name(value));
  const Py_ssize_t result = PyNumber_AsSsize_t(value.ptr(), PyExc_OverflowError);
  if (result == -1 && PyErr_Occurred()) throw py::error_already_set();
  return result;
}

bool is_tuple_or_list(py::handle value) { return py::isinstance<py::tuple>(value) || py::isinstance<py::list>(value); }

// Sizes or dims given as ints (t.reshape(2, 3)), as one tuple or list (t.reshape((2, 3))),
// or by keyword (t.reshape(shape=(2, 3))).
std::vector<int64_t> ints_arg(const py::tuple& args, const py::kwargs& kwargs, const char* op, const char* keyword) {
  py::object given = args;
  for (auto item : kwargs) {
    const std::string key = py::str(item.first);
    TG_CHECK_AS(TypeError, key == keyword, op, "() got an unexpected keyword argument '", key, "'");
    TG_CHECK_AS(TypeError, args.empty(), op, "() got multiple values for argument '", keyword, "'");
    given = py::reinterpret_borrow<py::object>(item.second);
  }
  TG_CHECK_AS(TypeError, !(args.empty() && kwargs.empty()), op, "() missing 1 required positional argument: \"",
              keyword, "\"");
  if (args.size() == 1 && is_tuple_or_list(args[0])) given = args[0];
  if (!is_tuple_or_list(given)) given = py::make_tuple(given);
  std::vector<int64_t> ints;
  for (py::handle value : given) ints.push_back(int_arg(value, op, keyword));
  return ints;
}

// `dim` merged with its alias `axis`, as torch accepts either.
py::handle dim_or_axis(py::handle dim, py::handle axis, const char* op) {
  if (axis.is_none()) return dim;
  TG_CHECK_AS(TypeError, dim.is_none(), op, "(): got both dim= and its alias axis=");
  return axis;
}

Tensor squeeze(const Tensor& t, py::handle dim, py::handle axis) {
  dim = dim_or_axis(dim, axis, "squeeze");
  if (dim.is_none()) return tg::squeeze(t);
  if (!is_tuple_or_list(dim)) return tg::squeeze(t, int_arg(dim, "squeeze", "dim"));
  std::vector<int64_t> dims;
  for (py::handle d : dim) dims.push_back(int_arg(d, "squeeze", "dim"));
  return tg::squeeze(t, dims);
}

std::vector<Tensor> tensors_arg(py::handle tensors, const char* op) {
  TG_CHECK_AS(TypeError, is_tuple_or_list(tensors), op,
              "(): argument 'tensors' must be a tuple or list of Tensors, not ", type_name(tensors));
  std::vector<Tensor> result;
  for (py::handle t : tensors) {
    TG_CHECK_AS(TypeError, is_tensor(t), op, "(): expected Tensor as element ", result.size(),
                " in argument 'tensors', but got ", type_name(t));
    result.push_back(t.cast<Tensor>());
  }
  return result;
}

Tensor reversed_dims(const Tensor& t) {
  if (t.ndim() == 0)
    warn("Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases.");
  if (t.ndim() == 1 || t.ndim() > 2)
    warn("The use of `x.T` on tensors of dimension other than 2 to reverse their shape is deprecated and it will "
         "throw an error in a future release. Consider `x.mT` to transpose batches of matrices or "
         "`x.permute(*range(x.ndim - 1, -1, -1))` to reverse the dimensions of a tensor.");
  std::vector<int64_t> dims;
  for (int64_t d = t.ndim() - 1; d >= 0; --d) dims.push_back(d);
  return tg::permute(t, dims);
}

// --- indexing ---

[[noreturn]] void invalid_index(py::handle item) {
  throw IndexError(detail::concat(
      "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices (got ",
      Py_TYPE(item.ptr())->tp_name, ")"));
}

// An index sequence (list, range, nested lists, numpy array) as an index tensor. As torch
// does, values that numpy reads as floats are truncated to int64.
IndexSpec sequence_spec(py::handle item) {
  const py::array array = py::module_::import("numpy").attr("asarray")(item);
  const char kind = array.dtype().kind();
  TG_CHECK_AS(TypeError, kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f', "index: invalid data type '",
              py::str(array.dtype()).cast<std::string>(), "' in an index sequence; use ints or bools");
  const py::array converted = array.attr("astype")(kind == 'b' ? py::dtype::of<bool>() : py::dtype::of<int64_t>());
  Tensor indices = tg::clone(from_numpy(py::module_::import("numpy").attr("ascontiguousarray")(converted)));
  if (indices.ndim() == 0 && kind != 'b') return IndexSpec::select(*indices.data<int64_t>());
  return IndexSpec::tensor(std::move(indices));
}

// One entry of an index expression.
IndexSpec index_spec(py::handle item) {
  PyObject* object = item.ptr();
  if (object == Py_None) return IndexSpec::new_axis();
  if (object == Py_Ellipsis) return IndexSpec::ellipsis();
  if (PyBool_Check(object)) return IndexSpec::tensor(scalar_tensor(object == Py_True, DType::Bool));
  if (is_tensor(object)) return IndexSpec::tensor(unwrap(object));
  if (PySlice_Check(object)) {
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(object, &start, &stop, &step) < 0) throw py::error_already_set();
    TG_CHECK_AS(ValueError, step > 0, "step must be greater than zero, got ", step);
    return IndexSpec::slice(start, stop, step);
  }
  if (PyFloat_Check(object)) invalid_index(item);
  if (PyUnicode_Check(object) || PyBytes_Check(object))
    throw TypeError(detail::concat("index: a ", Py_TYPE(object)->tp_name, " is not a valid index"));
  if (py::isinstance<py::array>(item) || PySequence_Check(object)) return sequence_spec(item);
  if (PyIndex_Check(object)) {
    const Py_ssize_t index = PyNumber_AsSsize_t(object, PyExc_OverflowError);
    if (index == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      throw ValueError(detail::concat("index ", py::repr(item).cast<std::string>(), " overflows int64"));
    }
    return IndexSpec::select(index);
  }
  invalid_index(item);
}

// torch (following numpy's old rule) reads a short list holding a sequence, a slice, a
// tensor, None or Ellipsis as a tuple of indices, with a deprecation warning.
bool sequence_as_tuple(py::handle index) {
  if (is_tensor(index) || py::isinstance<py::array>(index) || PyUnicode_Check(index.ptr()) ||
      !PySequence_Check(index.ptr()))
    return false;
  const Py_ssize_t n = PySequence_Size(index.ptr());
  if (n < 0 || n >= 32) {
    PyErr_Clear();
    return false;
  }
  const py::sequence items = py::reinterpret_borrow<py::sequence>(index);
  for (py::handle item : items) {
    PyObject* object = item.ptr();
    if (is_tensor(object) || PySequence_Check(object) || PySlice_Check(object) || object == Py_None ||
        object == Py_Ellipsis) {
      warn("Using a non-tuple sequence for multidimensional indexing is deprecated; use x[tuple(seq)] instead of "
           "x[seq]. torch too reads it as a tuple now and will read it as an index tensor, x[tensor(seq)], "
           "in a future release.");
      return true;
    }
  }
  return false;
}

Tensor getitem(const Tensor& self, py::handle index) {
  if (PySlice_Check(index.ptr()) && self.ndim() > 0) {  // t[a:b] alone is SliceBackward0 even when full
    const IndexSpec spec = index_spec(index);
    return tg::slice(self, 0, spec.start, spec.stop, spec.step);
  }
  std::vector<IndexSpec> specs;
  if (py::isinstance<py::tuple>(index) || sequence_as_tuple(index)) {
    for (py::handle item : py::reinterpret_borrow<py::sequence>(index)) specs.push_back(index_spec(item));
  } else {
    specs.push_back(index_spec(index));
  }
  return tg::index(self, specs);
}

}  // namespace

void bind_shape(py::module_& m) {
  const auto dim_arg = py::arg("dim") = py::none();
  const auto axis_arg = py::arg("axis") = py::none();

  def_method("reshape", [](const Tensor& t, const py::args& args, const py::kwargs& kwargs) {
    return tg::reshape(t, ints_arg(args, kwargs, "reshape", "shape"));
  });
  def_method("view", [](const Tensor& t, const py::args& args, const py::kwargs& kwargs) {
    return tg::view(t, ints_arg(args, kwargs, "view", "size"));
  }, py::doc("view(*shape): reshape under torch's other name, sharing the buffer. Tensors here are always "
             "contiguous (transpose and permute copy), so view never refuses a shape that reshape accepts; "
             "torch's refuses some after a transpose."));
  m.def("reshape", [](const Tensor& t, py::handle shape) {
    return tg::reshape(t, ints_arg(py::make_tuple(shape), py::kwargs(), "reshape", "shape"));
  }, py::arg("input"), py::arg("shape"));
  def_method("view_as", [](const Tensor& t, const Tensor& other) {
    return tg::view(t, std::vector<int64_t>(other.shape().begin(), other.shape().end()));
  }, py::arg("other"));
  def_method("reshape_as", [](const Tensor& t, const Tensor& other) {
    return tg::reshape(t, std::vector<int64_t>(other.shape().begin(), other.shape().end()));
  }, py::arg("other"));

  const auto flatten = [](const Tensor& t, py::handle start_dim, py::handle end_dim) {
    return tg::flatten(t, int_arg(start_dim, "flatten", "start_dim"), int_arg(end_dim, "flatten", "end_dim"));
  };
  def_method("flatten", flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("flatten", flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);

  def_method("squeeze", &squeeze, dim_arg, py::kw_only(), axis_arg);
  m.def("squeeze", &squeeze, py::arg("input"), dim_arg, py::kw_only(), axis_arg);

  const auto unsqueeze = [](const Tensor& t, py::handle dim, py::handle axis) {
    dim = dim_or_axis(dim, axis, "unsqueeze");
    TG_CHECK_AS(TypeError, !dim.is_none(), "unsqueeze() missing 1 required positional argument: \"dim\"");
    return tg::unsqueeze(t, int_arg(dim, "unsqueeze", "dim"));
  };
  def_method("unsqueeze", unsqueeze, dim_arg, py::kw_only(), axis_arg);
  m.def("unsqueeze", unsqueeze, py::arg("input"), dim_arg, py::kw_only(), axis_arg);

  const auto transpose = [](const Tensor& t, py::handle dim0, py::handle dim1) {
    return tg::transpose(t, int_arg(dim0, "transpose", "dim0"), int_arg(dim1, "transpose", "dim1"));
  };
  def_method("transpose", transpose, py::arg("dim0"), py::arg("dim1"));
  m.def("transpose", transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));

  def_method("permute", [](const Tensor& t, const py::args& args, const py::kwargs& kwargs) {
    return tg::permute(t, ints_arg(args, kwargs, "permute", "dims"));
  });
  m.def("permute", [](const Tensor& t, py::handle dims) {
    return tg::permute(t, ints_arg(py::make_tuple(dims), py::kwargs(), "permute", "dims"));
  }, py::arg("input"), py::arg("dims"));

  def_method("t", &tg::t);
  m.def("t", &tg::t, py::arg("input"));
  def_property("T", &reversed_dims, "The tensor with its dims reversed (a copy); the transpose of a matrix.");
  def_property("mT", [](const Tensor& t) {
    TG_CHECK(t.ndim() >= 2, "tensor.mT is only supported on matrices or batches of matrices. Got ", t.ndim(),
             "-D tensor.");
    return tg::transpose(t, -2, -1);
  }, "The tensor with its last two dims swapped (a copy): a batch of matrices transposed.");

  def_method("expand", [](const Tensor& t, const py::args& args, const py::kwargs& kwargs) {
    return tg::expand(t, ints_arg(args, kwargs, "expand", "size"));
  });
  def_method("expand_as", [](const Tensor& t, const Tensor& other) {
    return tg::expand(t, std::vector<int64_t>(other.shape().begin(), other.shape().end()));
  }, py::arg("other"));

  const auto cat = [](py::handle tensors, py::handle dim, py::handle axis) {
    dim = dim_or_axis(dim, axis, "cat");
    return tg::cat(tensors_arg(tensors, "cat"), dim.is_none() ? 0 : int_arg(dim, "cat", "dim"));
  };
  for (const char* name : {"cat", "concat", "concatenate"})
    m.def(name, cat, py::arg("tensors"), dim_arg, py::kw_only(), axis_arg);
  m.def("stack", [](py::handle tensors, py::handle dim, py::handle axis) {
    dim = dim_or_axis(dim, axis, "stack");
    return tg::stack(tensors_arg(tensors, "stack"), dim.is_none() ? 0 : int_arg(dim, "stack", "dim"));
  }, py::arg("tensors"), dim_arg, py::kw_only(), axis_arg);

  def_method("__getitem__", &getitem, py::doc("t[index] as in torch: ints, slices with positive steps, None, "
                                              "Ellipsis, int lists, ranges and int64 tensors (gathers), bool masks. "
                                              "The result is a copy; its gradient scatter-adds back."));
  def_method("__iter__", [](const Tensor& t) {
    TG_CHECK_AS(TypeError, t.ndim() > 0, "iteration over a 0-d tensor");
    py::list rows;
    for (int64_t i = 0; i < t.shape()[0]; ++i) rows.append(tg::select(t, 0, i));
    return py::iter(rows);
  });
}

}  // namespace tg::python
