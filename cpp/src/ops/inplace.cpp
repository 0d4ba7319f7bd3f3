// In-place ops. Without a graph to keep they run a kernel straight into the buffer; when
// the op must be recorded, it runs out of place on a copy of the old value (which its
// backward may need) and the result is written back, the new node becoming the grad_fn.
#include <cstring>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

using loops::Input;

void check_leaf(const char* name, const Tensor& self) {
  TG_CHECK(!(is_grad_enabled() && self.requires_grad() && self.is_leaf()), name,
           ": a leaf Variable that requires grad is being used in an in-place operation.");
}

bool must_record(const Tensor& self, const Tensor& other) {
  return is_grad_enabled() && (self.requires_grad() || other.requires_grad());
}

void check_writable(const char* name, const Tensor& self, const Shape& result_shape, DType result_dtype) {
  TG_CHECK(result_shape == self.shape(), name, ": output with shape ", self.shape().str(),
           " doesn't match the broadcast shape ", result_shape.str());
  TG_CHECK(category(result_dtype) <= category(self.dtype()), name, ": result type ", dtype_name(result_dtype),
           " can't be cast to the desired output type ", dtype_name(self.dtype()));
}

// The gradient of a value that no longer depends on its old history: zeros, as torch gives.
struct OverwriteBackward final : Node {
  const char* name_ = "FillBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor) override { accumulate_grad(*next[0], zeros(next[0]->shape, next[0]->dtype)); }
};

// self op= other, straight into self's buffer (nothing to record).
template <class Op>
Tensor& binary_inplace(const char* name, Tensor& self, const Tensor& other, Tensor (*out_of_place)(const Tensor&, const Tensor&),
                       Op op, bool true_division = false) {
  check_leaf(name, self);
  if (must_record(self, other))
    return write_inplace(name, self, [&](const Tensor& old) { return out_of_place(old, other); });
  const DType result = true_division && !is_floating(other.dtype()) ? DType::Float32 : other.dtype();
  check_writable(name, self, broadcast_shapes(self.shape(), other.shape(), name), result);
  const Tensor other_cast = to_dtype(other, self.dtype());
  dispatch_arithmetic(self.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    loops::map(self.data<T>(), self.shape(), [&](T x, T y) { return static_cast<T>(op(x, y)); },
               Input<T>{self.data<T>(), self.shape()}, Input<T>{other_cast.data<T>(), other.shape()});
  });
  self.storage()->bump_version();
  return self;
}

// Writes `value` into every element of self, recording nothing.
Tensor& fill_unrecorded(Tensor& self, double value) {
  dispatch_all(self.dtype(), [&](auto zero) {
    using T = decltype(zero);
    loops::fill(self.data<T>(), self.numel(), static_cast<T>(value));
  });
  self.storage()->bump_version();
  return self;
}

}  // namespace

Tensor& write_inplace(const char* name, Tensor& self, const std::function<Tensor(const Tensor&)>& compute) {
  check_leaf(name, self);
  Tensor old = self;
  if (is_grad_enabled()) {
    // The recorded op may save the old value (mul_ does, for the other operand's gradient),
    // so it gets a copy that the write below leaves alone.
    old = clone(self);
    if (self.requires_grad()) {  // the old value keeps the old history; the tensor takes the new one
      old.impl()->requires_grad = true;
      old.impl()->grad_fn = self.grad_fn();
    }
  }
  Tensor result = compute(old);
  check_writable(name, self, result.shape(), result.dtype());
  if (is_grad_enabled() && self.requires_grad() && !result.grad_fn()) {
    if (auto* node = record<OverwriteBackward>(result, {&old}))
      node->name_ = std::strcmp(name, "zero_") == 0 ? "ZeroBackward0" : "FillBackward0";
  }
  const Tensor converted = to_dtype(result, self.dtype());
  std::memcpy(self.raw_data(), converted.raw_data(), self.numel() * itemsize(self.dtype()));
  self.storage()->bump_version();
  const std::shared_ptr<Node>& node = result.grad_fn();
  if (node && is_floating(self.dtype())) {  // an int tensor takes the value, never a gradient
    TensorImpl* impl = self.impl();
    if (impl->retains_grad && impl->grad_fn && impl->grad_fn->retained.lock().get() == impl) {
      impl->grad_fn->retained.reset();  // .grad now means the gradient of the new value
      node->retained = self.impl_ptr();
    }
    impl->grad_fn = node;
    impl->requires_grad = true;
  }
  return self;
}

Tensor& add_(Tensor& self, const Tensor& other) {
  return binary_inplace("add_", self, other, add, [](auto x, auto y) { return x + y; });
}
Tensor& sub_(Tensor& self, const Tensor& other) {
  return binary_inplace("sub_", self, other, sub, [](auto x, auto y) { return x - y; });
}
Tensor& mul_(Tensor& self, const Tensor& other) {
  return binary_inplace("mul_", self, other, mul, [](auto x, auto y) { return x * y; });
}
Tensor& div_(Tensor& self, const Tensor& other) {
  return binary_inplace("div_", self, other, div, [](auto x, auto y) { return x / y; }, /*true_division=*/true);
}

Tensor& fill_(Tensor& self, double value) {
  check_leaf("fill_", self);
  if (is_grad_enabled() && self.requires_grad())
    return write_inplace("fill_", self, [&](const Tensor& old) { return full(old.shape(), value, old.dtype()); });
  return fill_unrecorded(self, value);
}

Tensor& zero_(Tensor& self) {
  check_leaf("zero_", self);
  if (is_grad_enabled() && self.requires_grad())
    return write_inplace("zero_", self, [&](const Tensor& old) { return zeros(old.shape(), old.dtype()); });
  return fill_unrecorded(self, 0);
}

namespace {

struct CopyBackward final : Node {
  const char* name() const override { return "CopyBackwards"; }
  void apply(Tensor grad) override {
    if (next[0]) accumulate_grad(*next[0], zeros(next[0]->shape, next[0]->dtype));  // the old value is gone
    if (next[1]) accumulate_grad(*next[1], std::move(grad));  // d(copy)/dsource = 1, summed over broadcast
  }
};

}  // namespace

Tensor& copy_(Tensor& self, const Tensor& source) {
  TG_CHECK(broadcast_shapes(self.shape(), source.shape(), "copy_") == self.shape(), "copy_: the source of shape ",
           source.shape().str(), " cannot be broadcast to ", self.shape().str());
  return write_inplace("copy_", self, [&](const Tensor& old) {
    Tensor value = to_dtype(expand_copy(source, old.shape()), old.dtype());
    record<CopyBackward>(value, {&old, &source});
    return value;
  });
}

}  // namespace tg
