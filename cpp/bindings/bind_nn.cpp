// Binding of the fused neural-network ops behind tapegrad.nn.functional.
#include "bindings.h"

namespace tg::python {
namespace {

LossReduction parse_reduction(const std::string& reduction, const char* op) {
  if (reduction == "mean") return LossReduction::Mean;
  if (reduction == "sum") return LossReduction::Sum;
  TG_CHECK_AS(ValueError, reduction == "none", op, ": ", reduction, " is not a valid value for reduction");
  return LossReduction::None;
}

}  // namespace

void bind_nn(py::module_& m) {
  m.def("_linear", [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias) {
    return tg::linear(x, weight, bias.value_or(Tensor()));
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
  m.def("_cross_entropy", [](const Tensor& logits, const Tensor& target, const std::string& reduction) {
    return tg::cross_entropy(logits, target, parse_reduction(reduction, "cross_entropy"));
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
  m.def("_mse_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction) {
    return tg::mse_loss(input, target, parse_reduction(reduction, "mse_loss"));
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
}

}  // namespace tg::python
