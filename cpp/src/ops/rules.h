// Machinery shared by backward rules of several op families. Internal to the ops.
#pragma once

#include <array>
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

// Records `out` = a * b (elementwise with broadcasting, or a product reduced afterwards,
// as in dot) under `node_name`: the gradient of each factor is the other times grad.
void record_product(Tensor& out, const Tensor& a, const Tensor& b, const char* node_name);

}  // namespace tg
