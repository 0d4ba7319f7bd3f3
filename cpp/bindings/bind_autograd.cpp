// Binding of grad mode and the backward engine's functional entry point.
#include "bindings.h"

namespace tg::python {

void bind_autograd(py::module_& m) {
  m.def("is_grad_enabled", &tg::is_grad_enabled);
  m.def("_set_grad_enabled", &tg::set_grad_enabled, py::arg("mode"));
  m.def("_run_backward", [](const std::vector<Tensor>& outputs, const std::vector<std::optional<Tensor>>& grad_outputs,
                           bool retain_graph, const std::vector<Tensor>& inputs) {
    std::vector<Tensor> grads;
    for (const auto& grad : grad_outputs) grads.push_back(grad.value_or(Tensor()));
    py::gil_scoped_release release;
    return tg::run_backward(outputs, grads, retain_graph, inputs);
  });
}

}  // namespace tg::python
