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

// In grad mode, as in torch, nothing may write into a leaf that requires grad, directly or
// through a view, nor into a view made in no_grad mode of a tensor that requires grad (the
// write would be recorded in neither's history).
void check_inplace_allowed(const char* name, const Tensor& self) {
  if (!is_grad_enabled()) return;
  TG_CHECK(!(self.requires_grad() && self.is_leaf()), name,
           ": a leaf Variable that requires grad is being used in an in-place operation.");
  const TensorImpl* base = self.impl()->view_base.get();
  if (!base || !base->requires_grad) return;
  TG_CHECK(base->grad_fn, name, ": a view of a leaf Variable that requires grad is being used in an in-place operation.");
  TG_CHECK(self.requires_grad(), name,
           ": a view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that "
           "this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both "
           "the view and the inplace either both inside the no_grad block (if you don't want the inplace to be "
           "tracked) or both outside (if you want the inplace to be tracked).");
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

// self op= other, straight into self's buffer (nothing to record). With a bool operand, the
// out-of-place op's own rules decide (bool + bool is bool; - refuses bools).
template <class Op>
Tensor& binary_inplace(const char* name, Tensor& self, const Tensor& other, Tensor (*out_of_place)(const Tensor&, const Tensor&),
                       Op op, bool true_division = false) {
  check_inplace_allowed(name, self);
  if (must_record(self, other) || self.dtype() == DType::Bool || other.dtype() == DType::Bool)
    return write_inplace(name, self, [&](const Tensor& old) { return out_of_place(old, other); });
  const DType result = true_division && !is_floating(other.dtype()) ? DType::Float32 : other.dtype();
  check_writable(name, self, broadcast_shapes(self.shape(), other.shape(), name), result);
  const Tensor other_cast = to_dtype(other, self.dtype());
  dispatch_arithmetic(self.dtype(), name, [&](auto zero) {
    using T = decltype(zero);
    loops::update(self.data<T>(), self.shape(), [&](T x, T y) { return static_cast<T>(op(x, y)); },
                  Input<T>{other_cast.data<T>(), other.shape()});
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
  check_inplace_allowed(name, self);
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
    const std::shared_ptr<TensorImpl>& base = self.impl()->view_base ? self.impl()->view_base : self.impl_ptr();
    if (base != self.impl_ptr()) {
      // The base's new value is this one in the base's shape (a view covers its base whole).
      set_history(base, view_node(node, base->shape, base->dtype, "CopySlices"));
    }
    set_history(self.impl_ptr(), node);
    self.impl()->history_version = ++base->history_version;  // the base's other views now lag
  }
  return self;
}

Tensor& add_(Tensor& self, const Tensor& other) {
  return binary_inplace("add_", self, other, add, loops::wrapping([](auto x, auto y) { return x + y; }));
}
Tensor& sub_(Tensor& self, const Tensor& other) {
  return binary_inplace("sub_", self, other, sub, loops::wrapping([](auto x, auto y) { return x - y; }));
}
Tensor& mul_(Tensor& self, const Tensor& other) {
  return binary_inplace("mul_", self, other, mul, loops::wrapping([](auto x, auto y) { return x * y; }));
}
Tensor& div_(Tensor& self, const Tensor& other) {
  return binary_inplace("div_", self, other, div, [](auto x, auto y) { return x / y; }, /*true_division=*/true);
}

Tensor& fill_(Tensor& self, double value) {
  check_inplace_allowed("fill_", self);
  if (is_grad_enabled() && self.requires_grad())
    return write_inplace("fill_", self, [&](const Tensor& old) { return full(old.shape(), value, old.dtype()); });
  return fill_unrecorded(self, value);
}

Tensor& zero_(Tensor& self) {
  check_inplace_allowed("zero_", self);
  if (is_grad_enabled() && self.requires_grad())
    return write_inplace("zero_", self, [&](const Tensor& old) { return zeros(old.shape(), old.dtype()); });
  // A buffer no view or numpy array shares (a .grad between steps) is zeroed lazily.
  if (self.storage().use_count() == 1 && self.storage()->zero_lazily()) {
    self.storage()->bump_version();
    return self;
  }
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
