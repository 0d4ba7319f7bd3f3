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
    const Tensor b = bias.value_or(Tensor());
    const int64_t out_features = weight.ndim() == 2 ? weight.shape()[0] : 1;
    return releasing_gil(product_work(x.numel(), out_features), [&] { return tg::linear(x, weight, b); });
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());
  m.def("_cross_entropy", [](const Tensor& logits, const Tensor& target, const std::string& reduction) {
    const LossReduction how = parse_reduction(reduction, "cross_entropy");
    return releasing_gil(elementwise_work(logits), [&] { return tg::cross_entropy(logits, target, how); });
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
  m.def("_mse_loss", [](const Tensor& input, const Tensor& target, const std::string& reduction) {
    const LossReduction how = parse_reduction(reduction, "mse_loss");
    return releasing_gil(elementwise_work(input, target), [&] { return tg::mse_loss(input, target, how); });
  }, py::arg("input"), py::arg("target"), py::arg("reduction") = "mean");
}

}  // namespace tg::python
