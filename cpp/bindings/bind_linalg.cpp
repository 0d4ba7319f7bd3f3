// Binding of the linear algebra ops.
#include "bindings.h"

namespace tg::python {

void bind_linalg(py::module_& m) {
  m.def("dot", &tg::dot);
  def_method("dot", &tg::dot);
}

}  // namespace tg::python
