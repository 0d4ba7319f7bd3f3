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
  m.def(
      "set_num_threads",
      [](py::handle threads) {
        TG_CHECK_AS(TypeError, PyIndex_Check(threads.ptr()) && !PyBool_Check(threads.ptr()),
                    "set_num_threads expects an int, but got ", type_name(threads));
        const py::int_ count = py::reinterpret_steal<py::int_>(PyNumber_Index(threads.ptr()));
        if (!count) throw py::error_already_set();
        int overflow = 0;
        const long long value = PyLong_AsLongLongAndOverflow(count.ptr(), &overflow);
        if (overflow > 0 || value > tg::max_num_threads())
          warn("set_num_threads: " + std::string(py::str(count)) + " threads is more than the " +
               std::to_string(tg::max_num_threads()) + " that OpenBLAS was built for; using " +
               std::to_string(tg::max_num_threads()));
        tg::set_num_threads(overflow > 0 ? INT64_MAX : overflow < 0 ? INT64_MIN : value);
      },
      py::arg("threads"),
      "Sets the threads one op may use: tapegrad's pool and OpenBLAS's; at most OpenBLAS's MAX_THREADS.");
  m.def("get_num_threads", &tg::get_num_threads,
        "The threads one op may use (by default OMP_NUM_THREADS, else the cores this process may run on).");
}

}  // namespace tg::python
