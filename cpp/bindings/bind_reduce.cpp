// Binding of the reductions and softmax, as functions and as Tensor methods, with torch's
// signatures (`axis=` is accepted for `dim=`), and tapegrad.return_types.max / min: the
// named tuples (values, indices) that max and min along a dim return.
#include "bindings.h"

namespace tg::python {
namespace {

// The default of `dim=`: unlike an explicit None, it selects the form without dims, which
// records another node (sum() is SumBackward0, sum(dim=None) SumBackward1, as in torch).
py::handle absent() {
  static const py::handle sentinel = py::module_::import("builtins").attr("object")().release();
  return sentinel;
}

std::string type_of(py::handle object) { return py::str(py::type::of(object).attr("__name__")).cast<std::string>(); }

int64_t dim_index(py::handle dim, const char* op) {
  TG_CHECK_AS(tg::TypeError, PyIndex_Check(dim.ptr()) && !PyBool_Check(dim.ptr()), op,
              "(): dim must be an int or a tuple of ints, got ", type_of(dim));
  PyObject* index = PyNumber_Index(dim.ptr());
  if (!index) throw py::error_already_set();
  const py::int_ value = py::reinterpret_steal<py::int_>(index);
  int overflow = 0;
  const long long as_long = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  TG_CHECK_AS(tg::IndexError, overflow == 0, op, "(): dim ", py::str(value).cast<std::string>(), " is out of range");
  return as_long;
}

// `dim`, or its alias `axis` when that is given instead.
py::handle dim_or_axis(py::handle dim, py::handle axis, const char* op) {
  if (axis.is_none()) return dim;
  TG_CHECK_AS(tg::TypeError, dim.is(absent()), op, "(): got both dim= and its alias axis=");
  return axis;
}

// The dims of `dim=` (or `axis=`): nullopt when absent; none (all dims, in the dims form) for
// None; else an int, or a tuple or list of ints.
std::optional<std::vector<int64_t>> dims_arg(py::handle dim, py::handle axis, const char* op) {
  dim = dim_or_axis(dim, axis, op);
  if (dim.is(absent())) return std::nullopt;
  std::vector<int64_t> dims;
  if (dim.is_none()) return dims;
  if (py::isinstance<py::tuple>(dim) || py::isinstance<py::list>(dim)) {
    for (py::handle d : dim) dims.push_back(dim_index(d, op));
    return dims;
  }
  dims.push_back(dim_index(dim, op));
  return dims;
}

// One dim or none, for the ops that take no tuple (prod, max, min, argmax, argmin).
std::optional<int64_t> single_dim_arg(py::handle dim, py::handle axis, const char* op) {
  dim = dim_or_axis(dim, axis, op);
  if (dim.is(absent()) || dim.is_none()) return std::nullopt;
  TG_CHECK_AS(tg::TypeError, !py::isinstance<py::tuple>(dim) && !py::isinstance<py::list>(dim), op,
              "(): dim must be an int, got a ", type_of(dim), " (", op, " reduces one dim or all of them)");
  return dim_index(dim, op);
}

// var and std: torch's (dim, unbiased, keepdim, *, correction), where a bool first argument is
// `unbiased`; the correction subtracted from the count is 1 unless unbiased=False or given.
Tensor variance(const Tensor& t, py::handle dim, py::handle unbiased, bool keepdim, py::handle correction,
                py::handle axis, bool is_std) {
  const char* op = is_std ? "std" : "var";
  if (PyBool_Check(dim.ptr()) && unbiased.is_none()) {
    unbiased = dim;
    dim = absent();
  }
  TG_CHECK_AS(tg::TypeError, unbiased.is_none() || correction.is_none(), op,
              "(): give either unbiased= or correction=, not both");
  TG_CHECK_AS(tg::TypeError, unbiased.is_none() || PyBool_Check(unbiased.ptr()), op,
              "(): unbiased must be a bool, got ", type_of(unbiased));
  double subtract = 1;
  if (!unbiased.is_none()) subtract = unbiased.cast<bool>() ? 1 : 0;
  if (!correction.is_none()) {
    TG_CHECK_AS(tg::TypeError, PyNumber_Check(correction.ptr()) && !PyBool_Check(correction.ptr()), op,
                "(): correction must be a number, got ", type_of(correction));
    subtract = correction.cast<double>();
  }
  const std::vector<int64_t> dims = dims_arg(dim, axis, op).value_or(std::vector<int64_t>{});
  return releasing_gil(elementwise_work(t), [&] {
    return is_std ? tg::std(t, dims, subtract, keepdim) : tg::var(t, dims, subtract, keepdim);
  });
}

// norm supports the 2-norm (p=2, or 'fro', which is the same for a vector norm over any dims).
Tensor norm(const Tensor& t, py::handle p, py::handle dim, bool keepdim, py::handle axis) {
  const bool two = p.is_none() || (py::isinstance<py::str>(p) && p.cast<std::string>() == "fro") ||
                   (PyNumber_Check(p.ptr()) && !PyBool_Check(p.ptr()) && !is_tensor(p) && p.cast<double>() == 2);
  TG_CHECK_AS(tg::ValueError, two, "norm(): only p=2 and p='fro' are supported, got p=", py::str(p).cast<std::string>());
  const std::optional<std::vector<int64_t>> dims = dims_arg(dim, axis, "norm");
  return releasing_gil(elementwise_work(t), [&] {
    return dims || keepdim ? tg::norm(t, dims.value_or(std::vector<int64_t>{}), keepdim) : tg::norm(t);
  });
}

// max / min: with another tensor, maximum / minimum; with a dim, the named tuple (values,
// indices); with neither, the 0-d extreme.
template <Tensor (*all)(const Tensor&), ValuesIndices (*along)(const Tensor&, int64_t, bool)>
py::object extreme(const Tensor& t, py::handle dim, bool keepdim, py::handle axis, const char* op, py::handle type) {
  const std::optional<int64_t> d = single_dim_arg(dim, axis, op);
  if (!d) {
    TG_CHECK_AS(tg::TypeError, !keepdim, op, "(): keepdim=True needs a dim");
    return py::cast(releasing_gil(elementwise_work(t), [&] { return all(t); }));
  }
  ValuesIndices result = releasing_gil(elementwise_work(t), [&] { return along(t, *d, keepdim); });
  return type(result.values, result.indices);
}

}  // namespace

void bind_reduce(py::module_& m) {
  py::module_ return_types = m.def_submodule("return_types", "The named tuples that ops return, as torch.return_types.");
  py::object namedtuple = py::module_::import("collections").attr("namedtuple");
  for (const char* name : {"max", "min"}) {
    py::object type = namedtuple(name, py::make_tuple("values", "indices"));
    type.attr("__module__") = "tapegrad.return_types";
    return_types.attr(name) = type;
  }
  const py::object max_type = return_types.attr("max"), min_type = return_types.attr("min");

  const auto dim = py::arg_v("dim", absent(), "None");
  const auto keepdim = py::arg("keepdim") = false;
  const auto axis = py::arg("axis") = py::none();

  // Each op is bound twice, as tg.op(input, ...) and as the method t.op(...).
  auto bind = [&](const char* name, auto function, auto... args) {
    m.def(name, function, py::arg("input"), args...);
    def_method(name, function, args...);
  };

  bind("sum", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<std::vector<int64_t>> dims = dims_arg(dim, axis, "sum");
    return releasing_gil(elementwise_work(t), [&] {
      return dims || keepdim ? tg::sum(t, dims.value_or(std::vector<int64_t>{}), keepdim) : tg::sum(t);
    });
  }, dim, keepdim, py::kw_only(), axis);
  bind("mean", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<std::vector<int64_t>> dims = dims_arg(dim, axis, "mean");
    return releasing_gil(elementwise_work(t), [&] {
      return dims || keepdim ? tg::mean(t, dims.value_or(std::vector<int64_t>{}), keepdim) : tg::mean(t);
    });
  }, dim, keepdim, py::kw_only(), axis);
  bind("norm", &norm, py::arg("p") = "fro", dim, keepdim, py::kw_only(), axis);
  for (const bool is_std : {false, true})
    bind(is_std ? "std" : "var", [is_std](const Tensor& t, py::handle dim, py::handle unbiased, bool keepdim,
                                          py::handle correction, py::handle axis) {
      return variance(t, dim, unbiased, keepdim, correction, axis, is_std);
    }, dim, py::arg("unbiased") = py::none(), keepdim, py::kw_only(), py::arg("correction") = py::none(), axis);
  bind("logsumexp", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<std::vector<int64_t>> dims = dims_arg(dim, axis, "logsumexp");
    TG_CHECK_AS(tg::TypeError, dims.has_value(), "logsumexp() missing 1 required positional argument: \"dim\"");
    return releasing_gil(elementwise_work(t), [&] { return tg::logsumexp(t, *dims, keepdim); });
  }, dim, keepdim, py::kw_only(), axis);
  bind("prod", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<int64_t> d = single_dim_arg(dim, axis, "prod");
    TG_CHECK_AS(tg::TypeError, d || !keepdim, "prod(): keepdim=True needs a dim");
    return releasing_gil(elementwise_work(t), [&] { return d ? tg::prod(t, *d, keepdim) : tg::prod(t); });
  }, dim, keepdim, py::kw_only(), axis);

  // tg.max(a, b) with two tensors is maximum (torch's overload); it is tried first.
  bind("max", [](const Tensor& t, const Tensor& other) {
    return releasing_gil(elementwise_work(t, other), [&] { return tg::maximum(t, other); });
  }, py::arg("other"));
  bind("min", [](const Tensor& t, const Tensor& other) {
    return releasing_gil(elementwise_work(t, other), [&] { return tg::minimum(t, other); });
  }, py::arg("other"));
  bind("max", [max_type](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    return extreme<tg::max, tg::max>(t, dim, keepdim, axis, "max", max_type);
  }, dim, keepdim, py::kw_only(), axis);
  bind("min", [min_type](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    return extreme<tg::min, tg::min>(t, dim, keepdim, axis, "min", min_type);
  }, dim, keepdim, py::kw_only(), axis);
  bind("argmax", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<int64_t> d = single_dim_arg(dim, axis, "argmax");
    return releasing_gil(elementwise_work(t), [&] { return tg::argmax(t, d, keepdim); });
  }, dim, keepdim, py::kw_only(), axis);
  bind("argmin", [](const Tensor& t, py::handle dim, bool keepdim, py::handle axis) {
    const std::optional<int64_t> d = single_dim_arg(dim, axis, "argmin");
    return releasing_gil(elementwise_work(t), [&] { return tg::argmin(t, d, keepdim); });
  }, dim, keepdim, py::kw_only(), axis);

  for (const bool log : {false, true})
    bind(log ? "log_softmax" : "softmax", [log](const Tensor& t, py::handle dim, std::optional<DType> dtype, py::handle axis) {
      const char* op = log ? "log_softmax" : "softmax";
      dim = dim_or_axis(dim, axis, op);
      TG_CHECK_AS(tg::TypeError, !dim.is(absent()), op, "() missing 1 required positional argument: \"dim\"");
      TG_CHECK_AS(tg::TypeError, !dim.is_none() && !py::isinstance<py::tuple>(dim) && !py::isinstance<py::list>(dim), op,
                  "(): argument 'dim' must be int, not ", type_of(dim));
      const int64_t d = dim_index(dim, op);
      return releasing_gil(elementwise_work(t),
                           [&] { return log ? tg::log_softmax(t, d, dtype) : tg::softmax(t, d, dtype); });
    }, dim, py::arg("dtype") = py::none(), py::kw_only(), axis);

  def_method("all", [](const Tensor& t) { return tg::scalar_tensor(tg::all(t), DType::Bool); });
  def_method("any", [](const Tensor& t) { return tg::scalar_tensor(tg::any(t), DType::Bool); });
}

}  // namespace tg::python
