// Gradient accumulation: the one function through which every backward rule adds into a
// gradient buffer (and the helpers of ops/rules.h built on it), and the fused run of a chain
// of elementwise rules.
#include <algorithm>

#include "ops/rules.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"
#include "tapegrad/parallel.h"

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
    // A contribution that is the lazily zeroed buffer itself (x.backward(x.grad) after
    // x.grad.zero_()) must read its zeros: it is added, which writes them first.
    if (contribution.storage() == target.grad.storage() || !target.grad.storage()->take_zero_pending()) {
      add_(target.grad, contribution);
      return;
    }
    dispatch_floating(target.dtype, "accumulate_grad", [&](auto zero) {  // written over the lazy zeros
      using T = decltype(zero);
      T* out = target.grad.data<T>();
      const T* in = contribution.data<T>();
      if (contribution.numel() == 1)  // a sum's gradient, say: streamed, as map's broadcast rows are not
        loops::fill(out, target.grad.numel(), *in);
      else
        loops::map(out, target.shape, [](T g) { return g; }, loops::Input<T>{in, contribution.shape()});
    });
    target.grad.storage()->bump_version();
  } else if (contribution.shape() != target.shape && !target.takes_broadcast_grad()) {
    target.grad = expand_copy(contribution, target.shape);
  } else {
    target.grad = contribution.is_exclusive() ? std::move(contribution) : clone(contribution);
  }
}

void accumulate_unchanging_grad(Node& target, Tensor contribution) {
  if (!target.grad.defined() && target.dependencies() == 1 && contribution.shape() == target.shape &&
      contribution.dtype() == target.dtype)
    target.grad = std::move(contribution);  // nothing will be added into it
  else
    accumulate_grad(target, std::move(contribution));
}

void run_unary_chain(const std::vector<Node*>& chain, const Tensor& grad) {
  const Node& first = *chain.front();
  Node& target = *chain.back()->next[0];
  const Shape& shape = first.shape;
  const bool in_place = has_grad_buffer(target, first, shape);
  const bool adds = in_place && !target.grad.storage()->take_zero_pending();  // else writes every element
  Tensor sums = in_place ? target.grad : Tensor::empty(shape, first.dtype);
  const bool one_value = grad.shape() != shape;  // a sum's gradient, say
  const bool stream = !adds && kernels::streams(shape.numel() * int64_t(itemsize(first.dtype)));
  // Each rule checks its saved tensors as it unpacks them for a block; with no element there is
  // no block, and an in-place change of a saved tensor must raise all the same.
  if (shape.numel() == 0)
    for (Node* node : chain) node->for_each_saved([node](SavedTensor& saved) { saved.unpack(*node); });
  dispatch_floating(first.dtype, first.name(), [&](auto zero) {
    using T = decltype(zero);
    const T* g = grad.data<T>();
    T* out = sums.data<T>();
    parallel_for(shape.numel(), kParallelGrain, [&](int64_t begin, int64_t end) {
      // 8 KiB blocks: two take half of a 32 KiB L1. With 4 KiB ones the chain of a 16 MB
      // float32 gradient ran 1.25x slower.
      constexpr int64_t kBlock = 8192 / sizeof(T);
      T blocks[2][kBlock];
      for (int64_t start = begin; start < end; start += kBlock) {
        const int64_t n = std::min(kBlock, end - start);
        const T* in = g + start;
        if (one_value) in = std::fill_n(blocks[1], n, *g) - n;
        for (size_t k = 0; k < chain.size(); ++k) {
          T* result = blocks[k % 2];  // never `in`, which is the other block (or g)
          chain[k]->unary_grad(in, result, start, n);
          in = result;
        }
        if (adds)
          for (int64_t i = 0; i < n; ++i) out[start + i] += in[i];
        else if (stream)
          loops::stream_row(out + start, n, [in](int64_t i) { return in[i]; });
        else
          std::copy_n(in, n, out + start);
      }
    });
  });
  if (in_place)
    sums.storage()->bump_version();  // as the add_ of accumulate_grad would
  else
    accumulate_grad(target, std::move(sums));
}

void accumulate_grad_shared(Node* first, Node* second, Tensor grad) {
  // Accumulating into a node that has a buffer only reads `grad`; the other node can take it.
  if (first && second && first->grad.defined() && !second->grad.defined()) std::swap(first, second);
  if (second) accumulate_grad(*second, grad);
  if (first) accumulate_grad(*first, std::move(grad));
}

}  // namespace tg
