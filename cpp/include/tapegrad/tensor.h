// Tensor: a shape, a dtype and a shared contiguous row-major buffer, plus what autograd
// needs to know about it. `Tensor` is a cheap handle; `TensorImpl` is the object it shares.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "tapegrad/dtype.h"
#include "tapegrad/shape.h"
#include "tapegrad/storage.h"

namespace tg {

class Node;
class Tensor;

// A function of a tensor's gradient, run by backward before the gradient is used: it may
// return a replacement, or an undefined tensor to keep the gradient as it is.
using GradHook = std::function<Tensor(const Tensor&)>;

struct TensorImpl {
  TensorImpl(Shape shape, DType dtype, std::shared_ptr<Storage> storage)
      : shape(shape), dtype(dtype), storage(std::move(storage)) {}
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();  // releases grad_fn without recursing down a long graph

  Shape shape;
  DType dtype;
  std::shared_ptr<Storage> storage;

  // A result of a recorded op has a grad_fn (and requires grad); a leaf has none and
  // requires grad only when the user asked.
  bool requires_grad = false;
  bool retains_grad = false;  // a non-leaf whose .grad backward fills in
  std::shared_ptr<Node> grad_fn;
  std::shared_ptr<TensorImpl> grad;
  // The node that accumulates into a leaf's .grad, shared by every op that uses the leaf.
  std::weak_ptr<Node> grad_accumulator;
  // A leaf's gradient hooks (a non-leaf's live on its grad_fn).
  std::vector<GradHook> hooks;
  // A view (reshape, view, squeeze, ...) shares its base's buffer and covers it whole, so an
  // in-place op through either changes both. `view_base` is the first tensor of a chain of
  // views (never itself a view), or null. A recorded in-place op through a base or any of
  // its views gives the base a new history and bumps the base's `history_version`; a view's
  // `history_version` is the base's at the time its grad_fn was made, and a view that lags
  // takes a fresh grad_fn, a view of the base's current history, before it is read.
  std::shared_ptr<TensorImpl> view_base;
  uint64_t history_version = 0;
  // The binding's object for this tensor while one exists (so a tensor keeps one identity
  // in Python); set and cleared by the binding, never dereferenced by the core.
  void* python_object = nullptr;
};

// Gives a view whose base's history changed a grad_fn that views the base's current one.
void rederive_view_history(const std::shared_ptr<TensorImpl>& view);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A new tensor with an uninitialised buffer from the pool.
  static Tensor empty(const Shape& shape, DType dtype);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  const Shape& shape() const { return impl_->shape; }
  DType dtype() const { return impl_->dtype; }
  int ndim() const { return impl_->shape.ndim(); }
  int64_t numel() const { return impl_->shape.numel(); }
  int64_t size(int64_t dim) const;
  void* raw_data() const { return impl_->storage->data(); }
  template <class T>
  T* data() const {
    TG_ASSERT(dtype_of<T>() == dtype());
    return static_cast<T*>(raw_data());
  }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  uint64_t version() const { return impl_->storage->version(); }
  // No other tensor or view shares this one's object or buffer: safe to take over.
  bool is_exclusive() const { return impl_.use_count() == 1 && impl_->storage.use_count() == 1; }

  bool requires_grad() const {
    sync_view_history();
    return impl_->requires_grad;
  }
  Tensor& requires_grad_(bool requires_grad = true);
  const std::shared_ptr<Node>& grad_fn() const {
    sync_view_history();
    return impl_->grad_fn;
  }
  bool is_leaf() const { return grad_fn() == nullptr; }
  // .grad, read and replaced under lock_user_state (autograd.h): a backward pass on another
  // thread may be writing it. set_grad(Tensor()) removes it.
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  void retain_grad();
  void register_hook(GradHook hook);

  // Reverse mode from this tensor: a scalar unless `gradient` (of this shape) is given.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  // A tensor sharing this buffer and version counter, outside any graph.
  Tensor detach() const;
  // The value of a one-element tensor, as a double.
  double item() const;

 private:
  void sync_view_history() const {
    if (impl_->view_base && impl_->history_version != impl_->view_base->history_version) rederive_view_history(impl_);
  }

  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace tg
