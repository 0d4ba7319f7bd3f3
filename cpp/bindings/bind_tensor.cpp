// Binding of tapegrad.Tensor's attributes and methods that are not ops, dtypes, grad_fn
// nodes, and the numpy interop.
#include "bindings.h"

namespace tg::python {

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::Float32: return py::dtype::of<float>();
    case DType::Float64: return py::dtype::of<double>();
    case DType::Int64: return py::dtype::of<int64_t>();
    case DType::Bool: return py::dtype::of<bool>();
  }
  TG_ASSERT(false);
}

std::optional<DType> dtype_of_numpy(const py::dtype& dtype) {
  if (dtype.is(py::dtype::of<float>())) return DType::Float32;
  if (dtype.is(py::dtype::of<double>())) return DType::Float64;
  if (dtype.is(py::dtype::of<int64_t>())) return DType::Int64;
  if (dtype.is(py::dtype::of<bool>())) return DType::Bool;
  const char kind = dtype.kind();
  if (kind == 'f') return dtype.itemsize() <= 4 ? DType::Float32 : DType::Float64;
  if (kind == 'i' || kind == 'u') return DType::Int64;
  return std::nullopt;
}

// A numpy array over the tensor's buffer; the array keeps the buffer alive, and holding its
// storage, makes zero_ write its zeros at once while the array lives.
py::array as_numpy(const Tensor& tensor) {
  TG_CHECK(!(tensor.requires_grad() && is_grad_enabled()),  // in no_grad, as torch, a view that records nothing
           "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
  auto* keep_alive = new std::shared_ptr<tg::Storage>(tensor.storage());
  py::capsule owner(keep_alive, [](void* p) { delete static_cast<std::shared_ptr<tg::Storage>*>(p); });
  return py::array(numpy_dtype(tensor.dtype()), std::vector<py::ssize_t>(tensor.shape().begin(), tensor.shape().end()),
                   {}, tensor.raw_data(), owner);
}

// Shares the array's memory, so it takes only what every kernel can read and write in
// place: anything else raises ValueError (and tg.tensor(a) copies it).
Tensor from_numpy(const py::array& array) {
  TG_CHECK_AS(tg::ValueError, array.dtype().byteorder() != '>',
              "from_numpy: big-endian arrays are not supported; use a.astype(a.dtype.newbyteorder('=')) or "
              "tg.tensor(a) to convert it");
  const std::optional<DType> dtype = dtype_of_numpy(array.dtype());
  TG_CHECK_AS(tg::TypeError, dtype && array.dtype().is(numpy_dtype(*dtype)),
              "from_numpy: can't convert np.ndarray of type ", py::str(array.dtype()).cast<std::string>(),
              ". The only supported types are: float64, float32, int64 and bool.");
  TG_CHECK_AS(tg::ValueError, array.flags() & py::array::c_style,
              "from_numpy: the array must be C-contiguous; use np.ascontiguousarray(a) or tg.tensor(a) to copy it");
  TG_CHECK_AS(tg::ValueError, array.writeable(),
              "from_numpy: the array is read-only, and in-place ops on a tensor sharing it would write into it; "
              "use tg.tensor(a) to copy it");
  TG_CHECK_AS(tg::ValueError, reinterpret_cast<uintptr_t>(array.data()) % array.itemsize() == 0,
              "from_numpy: the array's data is not aligned to its element size (", array.itemsize(),
              " bytes); use tg.tensor(a) to copy it");
  Shape shape(array.shape(), array.shape() + array.ndim());
  auto owner = std::shared_ptr<void>(new py::object(array), [](void* p) {
    py::gil_scoped_acquire gil;  // the last reference may drop on a thread without the GIL
    delete static_cast<py::object*>(p);
  });
  auto storage = tg::Storage::wrap(const_cast<void*>(array.data()), array.nbytes(), std::move(owner));
  return Tensor(std::make_shared<TensorImpl>(shape, *dtype, std::move(storage)));
}

py::object item(const Tensor& tensor) {
  const double value = tensor.item();  // checks there is one element
  switch (tensor.dtype()) {
    case DType::Int64: return py::int_(*tensor.data<int64_t>());  // exact, past 2^53 too
    case DType::Bool: return py::bool_(value != 0);
    default: return py::float_(value);
  }
}

Tensor PythonHook::operator()(const Tensor& grad) const {
  py::gil_scoped_acquire gil;  // backward runs without the GIL
  const auto callable = py::reinterpret_borrow<py::object>(function.get());  // alive through the call
  py::object result = callable(grad);
  TG_CHECK_AS(TypeError, result.is_none() || is_tensor(result), "hook: expected a Tensor or None, but hook returned '",
              type_name(result), "'");
  return result.is_none() ? Tensor() : result.cast<Tensor>();
}

namespace {

void backward(const Tensor& self, std::optional<Tensor> gradient, std::optional<bool> retain_graph) {
  py::gil_scoped_release release;  // the engine touches C++ objects only
  self.backward(gradient.value_or(Tensor()), retain_graph.value_or(false));
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::enum_<DType>(m, "dtype")
      .value("float32", DType::Float32)
      .value("float64", DType::Float64)
      .value("int64", DType::Int64)
      .value("bool", DType::Bool)
      .def("__repr__", [](DType dtype) { return std::string("tapegrad.") + tg::dtype_name(dtype); })
      .def("__str__", [](DType dtype) { return std::string("tapegrad.") + tg::dtype_name(dtype); })
      .def_property_readonly("is_floating_point", [](DType dtype) { return tg::is_floating(dtype); })
      .def_property_readonly("itemsize", [](DType dtype) { return tg::itemsize(dtype); });

  py::class_<Node, std::shared_ptr<Node>>(m, "Node", "A recorded op: the tape entry behind a tensor's grad_fn.")
      .def("name", &Node::name)
      .def_property_readonly("next_functions",
                             [](const Node& node) {
                               py::list edges;
                               for (const auto& next : node.next) edges.append(py::make_tuple(next, 0));
                               return py::tuple(edges);
                             })
      .def("__repr__", [](const Node& node) {
        return tg::detail::concat("<", node.name(), " object at ", static_cast<const void*>(&node), ">");
      });

  def_property("dtype", [](const Tensor& t) { return t.dtype(); }, "The element type.");
  def_property("grad_fn", [](const Tensor& t) { return t.grad_fn(); }, "The node that made this tensor, or None for a leaf.");
  def_property("retains_grad", [](const Tensor& t) { return t.impl()->retains_grad; }, "Whether backward fills .grad of this non-leaf.");
  def_method("dim", [](const Tensor& t) { return t.ndim(); });
  def_method("numel", [](const Tensor& t) { return t.numel(); });
  def_method("size", [](const Tensor& t, std::optional<int64_t> dim) -> py::object {
    if (dim) return py::int_(t.size(*dim));
    return py::tuple(py::cast(std::vector<int64_t>(t.shape().begin(), t.shape().end())));
  }, py::arg("dim") = py::none());
  def_method("requires_grad_", [](Tensor t, bool flag) { return t.requires_grad_(flag); }, py::arg("requires_grad") = true);
  def_method("retain_grad", [](Tensor t) { t.retain_grad(); });
  def_method("register_hook", [](const Tensor& t, py::function hook) { register_python_hook(t, hook.ptr()); },
             py::arg("hook"));
  def_method("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.storage()->escaping_data()); });
  def_method("item", &item);
  def_method("tolist", [](const Tensor& t) { return as_numpy(t.detach()).attr("tolist")(); });
  def_method("numpy", [](const Tensor& t) { return as_numpy(t); });
  def_method("__array__", [](const Tensor& t, py::object dtype, py::object) {
    py::object array = as_numpy(t);
    return dtype.is_none() ? array : array.attr("astype")(dtype);
  }, py::arg("dtype") = py::none(), py::arg("copy") = py::none());
  def_method("detach", [](const Tensor& t) { return t.detach(); });
  def_method("backward", &backward, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none());
  // in-place ops return the tensor itself
  const auto inplace = [](const char* name, Tensor& (*op)(Tensor&, const Tensor&)) {
    def_method(name, [op, name](py::object self, py::handle other) {
      Tensor t = unwrap(self.ptr());
      const Tensor value = operand(other, t);
      TG_CHECK_AS(TypeError, value.defined(), name, "(): argument 'other' must be a Tensor or a number, not ", type_name(other));
      op(t, value);
      return self;
    });
  };
  inplace("add_", tg::add_);
  inplace("sub_", tg::sub_);
  inplace("mul_", tg::mul_);
  inplace("div_", tg::div_);
  def_method("zero_", [](py::object self) {
    Tensor t = unwrap(self.ptr());
    tg::zero_(t);
    return self;
  });
  def_method("fill_", [](py::object self, double value) {
    Tensor t = unwrap(self.ptr());
    tg::fill_(t, value);
    return self;
  });
  def_method("copy_", [](py::object self, const Tensor& source) {
    Tensor t = unwrap(self.ptr());
    tg::copy_(t, source);
    return self;
  });
  // dtype conversions
  def_method("to", [](const Tensor& t, DType dtype) { return tg::to(t, dtype); });
  def_method("type", [](const Tensor& t, std::optional<DType> dtype) -> py::object {
    if (!dtype) return py::str(std::string("tapegrad.") + tg::dtype_name(t.dtype()));
    return py::cast(tg::to(t, *dtype));
  }, py::arg("dtype") = py::none());
  def_method("float", [](const Tensor& t) { return tg::to(t, DType::Float32); });
  def_method("double", [](const Tensor& t) { return tg::to(t, DType::Float64); });
  def_method("long", [](const Tensor& t) { return tg::to(t, DType::Int64); });
  def_method("bool", [](const Tensor& t) { return tg::to(t, DType::Bool); });
  m.def("_pool_stats", [] {
    const tg::PoolStats stats = tg::pool_stats();
    py::dict result;
    result["os_allocations"] = stats.os_allocations;
    result["reuses"] = stats.reuses;
    result["cached_bytes"] = stats.cached_bytes;
    return result;
  });
  m.def("_objects_walked_by_collector", &objects_walked_by_collector);
  m.def("empty_cache", &tg::empty_pool,
        "Returns the buffers the pool keeps for reuse to the system (as torch.cuda.empty_cache does "
        "for torch's CUDA cache); tensors in use keep theirs.");
}

}  // namespace tg::python
