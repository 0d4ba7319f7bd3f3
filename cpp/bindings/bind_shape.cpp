// Binding of the shape ops.
#include "bindings.h"

namespace tg::python {

void bind_shape(py::module_& m) {
  def_method("reshape", [](const Tensor& t, const py::args& args) {
    std::vector<int64_t> sizes;
    const py::sequence given = args.size() == 1 && py::isinstance<py::sequence>(args[0]) ? py::sequence(args[0]) : py::sequence(args);
    for (py::handle size : given) sizes.push_back(size.cast<int64_t>());
    return tg::reshape(t, sizes);
  });

}

}  // namespace tg::python
