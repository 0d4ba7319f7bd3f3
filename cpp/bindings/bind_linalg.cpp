// Binding of the linear algebra ops.
#include "bindings.h"

namespace tg::python {

void bind_linalg(py::module_& m) {
  m.def("matmul", &matmul_releasing_gil);
  const auto mm = [](const Tensor& a, const Tensor& b) {
    return releasing_gil(matmul_work(a, b), [&] { return tg::mm(a, b); });
  };
  m.def("mm", mm);
  m.def("outer", &tg::outer);
  def_method("matmul", &matmul_releasing_gil);
  def_method("mm", mm);
  def_method("outer", &tg::outer);
  m.def("dot", &tg::dot);
  def_method("dot", &tg::dot);
  m.def("set_num_threads", &tg::set_num_threads, py::arg("threads"),
        "Sets the threads one op may use: tapegrad's pool and OpenBLAS's.");
  m.def("get_num_threads", &tg::get_num_threads,
        "The threads one op may use (by default OMP_NUM_THREADS, else the cores this process may run on).");
}

}  // namespace tg::python
