// Gradient accumulation: the one function through which every backward rule adds into a
// gradient buffer (and the helpers of ops/rules.h built on it).
#include "ops/rules.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

// Whether `contribution` has dims (leading, or of size > 1 where `shape` has 1) that must be
// summed away before it broadcasts to `shape`.
bool needs_sum(const Shape& contribution, const Shape& shape) {
  if (contribution.ndim() > shape.ndim()) return true;
  const int offset = shape.ndim() - contribution.ndim();
  for (int d = 0; d < contribution.ndim(); ++d)
    if (shape[d + offset] == 1 && contribution[d] != 1) return true;
  return false;
}

}  // namespace

void accumulate_grad(Node& target, Tensor contribution) {
  contribution = to_dtype(contribution, target.dtype);
  if (needs_sum(contribution.shape(), target.shape)) contribution = sum_to_shape(contribution, target.shape);
  if (target.grad.defined()) {
    if (target.grad.shape() != target.shape) target.grad = expand_copy(target.grad, target.shape);  // was broadcast
    add_(target.grad, contribution);
  } else if (contribution.shape() != target.shape && !target.takes_broadcast_grad()) {
    target.grad = expand_copy(contribution, target.shape);
  } else {
    target.grad = contribution.is_exclusive() ? std::move(contribution) : clone(contribution);
  }
}

void accumulate_grad_shared(Node* first, Node* second, Tensor grad) {
  // Accumulating into a node that has a buffer only reads `grad`; the other node can take it.
  if (first && second && first->grad.defined() && !second->grad.defined()) std::swap(first, second);
  if (second) accumulate_grad(*second, grad);
  if (first) accumulate_grad(*first, std::move(grad));
}

}  // namespace tg
