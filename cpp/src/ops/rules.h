// Machinery shared by backward rules of several op families. Internal to the ops.
#pragma once

#include <array>
#include <tuple>
#include <utility>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {

template <class Op, size_t... K>
Tensor gradient_map_impl(std::index_sequence<K...>, const Node& node, const Shape& shape, const Tensor& grad, Op op,
                         const std::array<Tensor, sizeof...(K)>& saved) {
  Tensor out = Tensor::empty(shape, node.dtype);
  dispatch_floating(node.dtype, node.name(), [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), shape, op, loops::Input<T>{grad.data<T>(), grad.shape()},
               loops::Input<T>{saved[K].template data<T>(), saved[K].shape()}...);
  });
  return out;
}

// op(grad, saved...) over `shape`, every operand broadcast to it and converted to the
// node's dtype: a contribution for accumulate_grad.
template <class Op, class... Saved>
Tensor gradient_map(const Node& node, const Shape& shape, const Tensor& grad, Op op, const Saved&... saved) {
  return gradient_map_impl(std::index_sequence_for<Saved...>{}, node, shape, grad, op,
                           std::array<Tensor, sizeof...(Saved)>{to_dtype(saved, node.dtype)...});
}

// Adds op(grad, saved...) over `shape` (of target's input; each operand broadcast to it and
// converted to the node's dtype) into the gradient of `target`. When target's gradient buffer
// already exists with that shape and dtype (a leaf's .grad, or an earlier contribution), one
// pass adds into it: g_in += op(g_out, saved...). Otherwise the map makes a contribution for
// accumulate_grad, which allocates (or moves it in), un-broadcasts and converts.
template <class Op, class... Saved>
void accumulate_grad_map(Node& target, const Node& node, const Shape& shape, const Tensor& grad, Op op,
                         const Saved&... saved) {
  if (!target.grad.defined() || target.shape != shape || target.dtype != node.dtype)
    return accumulate_grad(target, gradient_map(node, shape, grad, op, saved...));
  const std::array<Tensor, sizeof...(Saved)> converted{to_dtype(saved, node.dtype)...};
  dispatch_floating(node.dtype, node.name(), [&](auto zero) {
    using T = decltype(zero);
    T* sums = target.grad.data<T>();
    std::apply([&](const auto&... operands) {
      loops::update(sums, shape, [op](T sum, T g, auto... values) { return sum + op(g, values...); },
                 loops::Input<T>{grad.data<T>(), grad.shape()},
                 loops::Input<T>{operands.template data<T>(), operands.shape()}...);
    }, converted);
  });
  target.grad.storage()->bump_version();  // as the add_ of accumulate_grad would
}

// Passes one gradient on to two nodes (an op whose derivative is 1 for both inputs), moving
// it into the one that has no buffer yet, so that at most one needs a copy.
void accumulate_grad_shared(Node* first, Node* second, Tensor grad);

// Records `out` = a * b (elementwise with broadcasting, or a product reduced afterwards,
// as in dot) under `node_name`: the gradient of each factor is the other times grad.
void record_product(Tensor& out, const Tensor& a, const Tensor& b, const char* node_name);

}  // namespace tg
