// Machinery shared by backward rules of several op families. Internal to the ops.
#pragma once

#include <array>
#include <tuple>
#include <utility>

#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {

// The node of an elementwise op whose rules all map their gradient over the output's shape
// (accumulate_grad_map, reading it broadcast there): it takes a broadcast gradient as it is.
struct ElementwiseNode : Node {
  bool takes_broadcast_grad() const final { return true; }
};

// The loop of Node::unary_grad for a rule g_in = rule(g_out, saved), in the node's dtype T:
// grad_input[i] = rule(grad_output[i], saved[i]) for i < n, `saved` at the block's start.
template <class T, class Rule>
void unary_rows(const void* grad_output, const T* saved, void* grad_input, int64_t n, Rule rule) {
  const T* g = static_cast<const T*>(grad_output);
  T* out = static_cast<T*>(grad_input);
  for (int64_t i = 0; i < n; ++i) out[i] = rule(g[i], saved[i]);
}

// Calls fn(zero, grad, saved...) with zero a T of the node's dtype and each tensor as a
// loops::Input<T>, the saved ones converted to that dtype.
template <class Fn, class... Saved>
void with_rule_inputs(const Node& node, const Tensor& grad, Fn fn, const Saved&... saved) {
  const std::array<Tensor, sizeof...(Saved)> converted{to_dtype(saved, node.dtype)...};
  dispatch_floating(node.dtype, node.name(), [&](auto zero) {
    using T = decltype(zero);
    std::apply([&](const auto&... operands) {
      fn(zero, loops::Input<T>{grad.data<T>(), grad.shape()},
         loops::Input<T>{operands.template data<T>(), operands.shape()}...);
    }, converted);
  });
}

// op(grad, saved...) over `shape`, every operand broadcast to it and converted to the
// node's dtype: a contribution for accumulate_grad.
template <class Op, class... Saved>
Tensor gradient_map(const Node& node, const Shape& shape, const Tensor& grad, Op op, const Saved&... saved) {
  Tensor out = Tensor::empty(shape, node.dtype);
  with_rule_inputs(node, grad, [&](auto zero, auto... inputs) {
    loops::map(out.data<decltype(zero)>(), shape, op, inputs...);
  }, saved...);
  return out;
}

// Whether the gradient buffer of `target` exists over `shape` in the node's dtype (a leaf's
// .grad, or an earlier contribution), so that a rule of `node` can add into it in place.
inline bool has_grad_buffer(const Node& target, const Node& node, const Shape& shape) {
  return target.grad.defined() && target.grad.shape() == shape && target.dtype == node.dtype;
}

// Adds op(grad, saved...) over `shape` (of target's input; each operand broadcast to it and
// converted to the node's dtype) into the gradient of `target`. When target has its gradient
// buffer (has_grad_buffer), one pass adds into it: g_in += op(g_out, saved...), or writes
// over it if it was zeroed lazily. Otherwise the map makes a contribution for
// accumulate_grad, which allocates (or moves it in), un-broadcasts and converts.
template <class Op, class... Saved>
void accumulate_grad_map(Node& target, const Node& node, const Shape& shape, const Tensor& grad, Op op,
                         const Saved&... saved) {
  if (!has_grad_buffer(target, node, shape)) return accumulate_grad(target, gradient_map(node, shape, grad, op, saved...));
  const bool adds = !target.grad.storage()->take_zero_pending();
  with_rule_inputs(node, grad, [&](auto zero, auto... inputs) {
    using T = decltype(zero);
    if (adds)
      loops::update(target.grad.data<T>(), shape, [op](T sum, T g, auto... values) { return sum + op(g, values...); },
                    inputs...);
    else
      loops::map(target.grad.data<T>(), shape, op, inputs...);  // gradient_map's loop
  }, saved...);
  target.grad.storage()->bump_version();  // as the add_ of accumulate_grad would
}

// accumulate_grad_map into two nodes at once, first_op's result into `first` and second_op's
// into `second`, in one pass over the operands, when both have their gradient buffer in
// `shape` and the buffers are two: a product's rule then reads g, a and b once, not twice.
// Returns false, having done nothing, otherwise. Buffers zeroed lazily are written without
// being read; if only one was, it is read (its lines are fetched to be written anyway) and
// its values are not added to.
template <class FirstOp, class SecondOp, class... Saved>
bool accumulate_grad_maps_in_place(Node& first, Node& second, const Node& node, const Shape& shape, const Tensor& grad,
                                   FirstOp first_op, SecondOp second_op, const Saved&... saved) {
  if (!has_grad_buffer(first, node, shape) || !has_grad_buffer(second, node, shape) ||
      first.grad.storage() == second.grad.storage())
    return false;
  const bool first_adds = !first.grad.storage()->take_zero_pending();
  const bool second_adds = !second.grad.storage()->take_zero_pending();
  with_rule_inputs(node, grad, [&](auto zero, auto... inputs) {
    using T = decltype(zero);
    loops::update_pair(first.grad.data<T>(), second.grad.data<T>(), shape, !first_adds && !second_adds,
                       [=](T sum, T g, auto... values) { return (first_adds ? sum : T(0)) + first_op(g, values...); },
                       [=](T sum, T g, auto... values) { return (second_adds ? sum : T(0)) + second_op(g, values...); },
                       inputs...);
  }, saved...);
  first.grad.storage()->bump_version();
  second.grad.storage()->bump_version();
  return true;
}

// Passes one gradient on to two nodes (an op whose derivative is 1 for both inputs), moving
// it into the one that has no buffer yet, so that at most one needs a copy.
void accumulate_grad_shared(Node* first, Node* second, Tensor grad);

// Records `out` = a * b (elementwise with broadcasting, or a product reduced afterwards,
// as in dot) under `node_name`: the gradient of each factor is the other times grad.
void record_product(Tensor& out, const Tensor& a, const Tensor& b, const char* node_name);

}  // namespace tg
