// Binding of the reductions, as functions and as Tensor methods.
#include "bindings.h"

namespace tg::python {

void bind_reduce(py::module_& m) {
  m.def("sum", &tg::sum);
  m.def("mean", &tg::mean);
  m.def("norm", &tg::norm);
  def_method("sum", &tg::sum);
  def_method("mean", &tg::mean);
  def_method("norm", &tg::norm);
  def_method("all", [](const Tensor& t) { return tg::scalar_tensor(tg::all(t), DType::Bool); });
  def_method("any", [](const Tensor& t) { return tg::scalar_tensor(tg::any(t), DType::Bool); });
}

}  // namespace tg::python
