// Binding of the elementwise ops' named forms (the operators are number slots in
// python_tensor.cpp) and of the elementwise math, as functions and as Tensor methods.
#include "bindings.h"

namespace tg::python {
namespace {

using UnaryOp = Tensor (*)(const Tensor&);

struct UnaryBinding {
  const char* name;
  UnaryOp op;
  const char* doc;
};

constexpr UnaryBinding unary_ops[] = {
    {"exp", &tg::exp, "e raised to each element."},
    {"log", &tg::log, "Natural logarithm of each element (-inf at 0, nan below)."},
    {"sqrt", &tg::sqrt, "Square root of each element (nan below 0)."},
    {"abs", &tg::abs, "Absolute value of each element; keeps int64."},
    {"sin", &tg::sin, "Sine of each element."},
    {"cos", &tg::cos, "Cosine of each element."},
    {"tanh", &tg::tanh, "Hyperbolic tangent of each element."},
    {"sigmoid", &tg::sigmoid, "Logistic sigmoid 1 / (1 + exp(-x)) of each element, without overflow."},
    {"relu", &tg::relu, "max(x, 0) of each element; keeps int64."},
};

// A 0-d tensor that requires no grad: what torch's argument parser also accepts as a number.
bool is_number_like_tensor(py::handle object) {
  return is_tensor(object) && unwrap(object.ptr()).ndim() == 0 && !unwrap(object.ptr()).requires_grad();
}

// clamp's min or max given as a number: its value, and whether it is integral (which keeps
// an int64 input's dtype); nullopt for None.
std::optional<double> number_bound(const Tensor& input, py::handle bound, const char* which, bool& integral) {
  if (bound.is_none()) return std::nullopt;
  const Tensor wrapped = is_tensor(bound) ? bound.cast<Tensor>() : operand(bound, input);
  if (!wrapped.defined())
    throw py::type_error(tg::detail::concat("clamp(): argument '", which, "' must be a number, a Tensor or None, not ",
                                            type_name(bound)));
  integral = integral && !is_floating(wrapped.dtype());
  return wrapped.item();
}

Tensor clamp(const Tensor& input, py::handle min, py::handle max) {
  const auto is_number = [](py::handle bound) { return !bound.is_none() && !is_tensor(bound); };
  const auto tensor_or_none = [](py::handle bound) { return bound.is_none() ? Tensor() : bound.cast<Tensor>(); };
  if (!is_number(min) && !is_number(max) && (is_tensor(min) || is_tensor(max))) {
    const Tensor lo = tensor_or_none(min), hi = tensor_or_none(max);
    return releasing_gil(elementwise_work(input), [&] { return tg::clamp(input, lo, hi); });
  }
  // Number bounds. As in torch, a tensor mixed with a number passes only as a 0-d tensor without grad.
  for (py::handle bound : {min, max})
    if (is_tensor(bound) && !is_number_like_tensor(bound))
      throw py::type_error(tg::detail::concat("clamp(): min and max must both be tensors or both be numbers, got ",
                                              type_name(min), " and ", type_name(max)));
  bool integral = true;
  const std::optional<double> lo = number_bound(input, min, "min", integral);
  const std::optional<double> hi = number_bound(input, max, "max", integral);
  return releasing_gil(elementwise_work(input), [&] { return tg::clamp(input, lo, hi, integral); });
}

// where's input or other: a tensor, or a number wrapped as torch wraps it.
Tensor where_operand(py::handle value, const Tensor& like, const char* which) {
  Tensor wrapped = operand(value, like);
  if (!wrapped.defined())
    throw py::type_error(
        tg::detail::concat("where(): argument '", which, "' must be a Tensor or a number, not ", type_name(value)));
  return wrapped;
}

Tensor where(const Tensor& condition, py::handle input, py::handle other) {
  // A number takes its dtype next to the other operand when that is a tensor, as torch's do.
  const Tensor& like = is_tensor(input) ? unwrap(input.ptr()) : is_tensor(other) ? unwrap(other.ptr()) : condition;
  const Tensor a = where_operand(input, like, "input"), b = where_operand(other, like, "other");
  return releasing_gil(std::max(elementwise_work(condition), elementwise_work(a, b)),
                       [&] { return tg::where(condition, a, b); });
}

}  // namespace

void bind_elementwise(py::module_& m) {
  m.def("add", [](py::handle a, py::handle b) { return binary_function<tg::add>("add", a, b); });
  m.def("sub", [](py::handle a, py::handle b) { return binary_function<tg::sub>("sub", a, b); });
  m.def("mul", [](py::handle a, py::handle b) { return binary_function<tg::mul>("mul", a, b); });
  m.def("div", [](py::handle a, py::handle b) { return binary_function<tg::div>("div", a, b); });
  m.def("pow", [](py::handle a, py::handle b) { return binary_function<tg::pow, tg::pow_number>("pow", a, b); });
  m.def("neg", [](const Tensor& t) { return releasing_gil(elementwise_work(t), [&] { return tg::neg(t); }); });

  for (const UnaryBinding& unary : unary_ops) {
    const auto function = [op = unary.op](const Tensor& t) {
      return releasing_gil(elementwise_work(t), [&] { return op(t); });
    };
    m.def(unary.name, function, py::arg("input"), unary.doc);
    def_method(unary.name, function, unary.doc);
  }

  const char* clamp_doc =
      "Limits each element to [min, max] (numbers, or tensors that broadcast); at least one bound is needed.";
  m.def("clamp", &clamp, py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none(), clamp_doc);
  def_method("clamp", &clamp, py::arg("min") = py::none(), py::arg("max") = py::none(), clamp_doc);
  def_method("clamp_", [](py::object self, py::handle min, py::handle max) {
    Tensor t = unwrap(self.ptr());
    tg::write_inplace("clamp_", t, [&](const Tensor& old) { return clamp(old, min, max); });
    return self;
  }, py::arg("min") = py::none(), py::arg("max") = py::none(), "In-place clamp: self takes clamp(self, min, max).");

  const auto maximum = [](const Tensor& a, const Tensor& b) {
    return releasing_gil(elementwise_work(a, b), [&] { return tg::maximum(a, b); });
  };
  const auto minimum = [](const Tensor& a, const Tensor& b) {
    return releasing_gil(elementwise_work(a, b), [&] { return tg::minimum(a, b); });
  };
  m.def("maximum", maximum, py::arg("input"), py::arg("other"), "Elementwise maximum, broadcasting; nan propagates.");
  m.def("minimum", minimum, py::arg("input"), py::arg("other"), "Elementwise minimum, broadcasting; nan propagates.");
  def_method("maximum", maximum, py::arg("other"));
  def_method("minimum", minimum, py::arg("other"));

  const char* where_doc = "input where condition (a bool tensor) holds, other elsewhere; all three broadcast.";
  m.def("where", &where, py::arg("condition"), py::arg("input"), py::arg("other"), where_doc);
  def_method("where", [](py::handle self, const Tensor& condition, py::handle other) { return where(condition, self, other); },
             py::arg("condition"), py::arg("other"), where_doc);
}

}  // namespace tg::python
