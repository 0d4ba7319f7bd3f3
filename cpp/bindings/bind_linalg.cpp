// Binding of the linear algebra ops.
#include "bindings.h"

namespace tg::python {

void bind_linalg(py::module_& m) {
  m.def("matmul", &matmul_releasing_gil);
  m.def("mm", &tg::mm);
  m.def("outer", &tg::outer);
  def_method("matmul", &matmul_releasing_gil);
  def_method("mm", &tg::mm);
  def_method("outer", &tg::outer);
  m.def("dot", &tg::dot);
  m.def("set_num_threads", &tg::set_num_threads, py::arg("threads"));
  m.def("get_num_threads", &tg::get_num_threads);
  def_method("dot", &tg::dot);
}

}  // namespace tg::python
