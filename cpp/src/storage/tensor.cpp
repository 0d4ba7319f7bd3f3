// Tensor handles: construction, views that share the buffer, and element access.
#include "tapegrad/tensor.h"

#include "tapegrad/autograd.h"
#include "tapegrad/error.h"

namespace tg {

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  // The product of the nonzero sizes bounds every stride and index, so it must not overflow
  // (with a size 0 the tensor is empty, yet its strides are computed all the same).
  int64_t extent = 1;
  for (const int64_t size : shape)
    TG_CHECK_AS(MemoryError, !__builtin_mul_overflow(extent, size == 0 ? 1 : size, &extent),
                "can't allocate a tensor of shape ", shape.str(), ": too many elements");
  // Sizes are capped far below where numel * itemsize could overflow.
  const int64_t numel = shape.numel();
  TG_CHECK_AS(MemoryError, numel <= (int64_t(1) << 56) / int64_t(itemsize(dtype)),
              "can't allocate a tensor of shape ", shape.str(), ": too many elements");
  return Tensor(std::make_shared<TensorImpl>(shape, dtype, Storage::allocate(numel * itemsize(dtype))));
}

int64_t Tensor::size(int64_t dim) const { return shape()[wrap_dim(dim, ndim(), "size")]; }

Tensor& Tensor::requires_grad_(bool requires_grad) {
  TG_CHECK(!requires_grad || is_floating(dtype()),
              "only Tensors of floating point dtype can require gradients, got ", dtype_name(dtype()));
  TG_CHECK(is_leaf() || requires_grad,
           "you can only change requires_grad flags of leaf variables. If you want to use a computed "
           "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
  impl_->requires_grad = requires_grad;
  return *this;
}

void Tensor::retain_grad() {
  TG_CHECK(requires_grad(), "can't retain_grad on Tensor that has requires_grad=False");
  if (is_leaf()) return;  // leaves keep .grad anyway
  impl_->retains_grad = true;
  const std::shared_ptr<Node>& node = grad_fn();
  const auto lock = lock_user_state();
  node->retained = impl_;
}

void Tensor::register_hook(GradHook hook) {
  TG_CHECK(requires_grad(), "cannot register a hook on a tensor that doesn't require gradient");
  std::vector<GradHook>& hooks = is_leaf() ? impl_->hooks : grad_fn()->hooks;
  const auto lock = lock_user_state();
  hooks.push_back(std::move(hook));
}

Tensor Tensor::grad() const {
  const auto lock = lock_user_state();
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& grad) {
  std::shared_ptr<TensorImpl> replaced = grad.impl_ptr();
  const auto lock = lock_user_state();
  std::swap(impl_->grad, replaced);  // the old .grad is released below, after the lock
}

Tensor Tensor::detach() const {
  return Tensor(std::make_shared<TensorImpl>(shape(), dtype(), storage()));
}

double Tensor::item() const {
  TG_CHECK(numel() == 1, "a Tensor with ", numel(), " elements cannot be converted to Scalar");
  return dispatch_all(dtype(), [&](auto zero) { return double(static_cast<const decltype(zero)*>(raw_data())[0]); });
}

}  // namespace tg
