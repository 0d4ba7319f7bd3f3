// Reverse mode: the tape entry (Node), what it saves (SavedTensor), gradient accumulation,
// grad mode, and the backward engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

class SavedTensor;
using SavedVisitor = std::function<void(SavedTensor&)>;

// One recorded op: the tape entry. A result owns the node that made it, and a node owns
// the nodes of its inputs (`next`), so a graph lives exactly as long as some result of it.
// Sequence numbers grow with recording order, so every node's inputs have smaller ones:
// running nodes by decreasing sequence number is a topological order.
class Node {
 public:
  Node();
  // A leaf's AccumulateGrad is made when the leaf is first used, after its consumer, and
  // takes sequence number 0 so that it still runs after every op.
  explicit Node(uint64_t sequence_nr) : sequence_nr_(sequence_nr) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  virtual ~Node();  // releases `next` without recursing down a long graph

  virtual const char* name() const = 0;
  // Adds the gradients of the op's inputs, given the gradient of its output, into the
  // inputs' nodes through accumulate_grad.
  virtual void apply(Tensor grad_output) = 0;
  // Calls `visit` on each tensor the op saved for backward.
  virtual void for_each_saved(const SavedVisitor& visit) { (void)visit; }
  // Drops what the op saved for backward (after a backward without retain_graph).
  void release_saved();
  // The leaf this node accumulates into, for AccumulateGrad; null for an op's node.
  virtual TensorImpl* leaf() const { return nullptr; }
  // Whether apply() takes a gradient that only broadcasts to `shape` (a sum's gradient: one
  // number) as it is. The elementwise rules do, as they read their gradient broadcast anyway,
  // and so do add and sub; for every other node the gradient is expanded to `shape` first.
  virtual bool takes_broadcast_grad() const { return false; }
  // Whether the op maps one input elementwise, that input having the output's shape and the
  // node's dtype, so that unary_grad gives its gradient block by block: the engine then runs a
  // chain of such nodes as one pass (run_unary_chain).
  virtual bool is_unary_map() const { return false; }
  // For an is_unary_map node: the input's gradient at elements [begin, begin + n) of the
  // flattened shape, given the output's gradient there (both arrays of the node's dtype).
  virtual void unary_grad(const void* grad_output, void* grad_input, int64_t begin, int64_t n);
  // Whether apply() adds its gradient, as it is, to the gradient of input `input` (both
  // inputs of add, the first of sub), when that input has the output's shape and dtype.
  virtual bool passes_grad_unchanged(size_t input) const { (void)input; return false; }

  uint64_t sequence_nr() const { return sequence_nr_; }
  // Edges into this node from the nodes of the current backward pass, plus one if it is a
  // root: how many contributions its gradient can receive.
  int dependencies() const { return dependencies_; }

  // The node of each differentiable input, in argument order; null where the input needs
  // no gradient.
  std::vector<std::shared_ptr<Node>> next;
  // Shape and dtype of the op's output: what a gradient flowing into this node must have.
  Shape shape;
  DType dtype = DType::Float32;
  // The gradient of the output, summed over all its uses during one backward pass.
  Tensor grad;
  // The non-leaf tensor whose .grad this node fills in (retain_grad).
  std::weak_ptr<TensorImpl> retained;
  // Hooks registered on the tensor this node made.
  std::vector<GradHook> hooks;
  // Set by the engine for one pass: the input whose gradient buffer (a leaf's .grad) is also
  // this node's `grad`, so that whatever reaches this node has reached that input too and
  // apply() passes its gradient on to the other inputs only; -1 when there is none.
  int shares_grad_with_input = -1;
  // Set by the engine for one pass, on a leaf's AccumulateGrad: `grad` is the leaf's .grad as
  // the pass found it, so contributions were added there in place and apply() has nothing to do.
  bool grad_is_leaf_grad = false;

 private:
  friend class Engine;
  uint64_t sequence_nr_;
  uint64_t visited_pass_ = 0;
  int dependencies_ = 0;  // edges into this node from the nodes of the current pass
};

// The node at the end of every path to a leaf: adds into the leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  const char* name() const override { return "AccumulateGrad"; }
  void apply(Tensor grad_output) override;
  TensorImpl* leaf() const override { return leaf_.get(); }
  const std::shared_ptr<TensorImpl>& leaf_ptr() const { return leaf_; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// A tensor an op keeps for its backward rule, with the version its buffer had then.
// Unpacking checks that nothing wrote into it since and that it was not released.
class SavedTensor {
 public:
  SavedTensor() = default;
  // An op's output is saved without its grad_fn: keeping it would make a cycle.
  SavedTensor(const Tensor& tensor, bool is_output);

  const Tensor& unpack(const Node& owner) const;
  // What is held, unchecked (undefined once released): for walks over what a graph owns.
  const Tensor& held() const { return tensor_; }
  void release() {
    tensor_ = Tensor();
    released_ = true;
  }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
  bool released_ = false;
};

// Adds `contribution` into the gradient of the output of `target`: the one place where
// gradients are summed. A contribution in a broadcast shape is summed down to the target's
// shape, a smaller one is broadcast up (or kept as it is, for a node that takes broadcast
// gradients, until a second contribution arrives), and a dtype is converted, here. The first
// contribution of a pass is moved in when nothing else holds it; later ones add in place.
void accumulate_grad(Node& target, Tensor contribution);
// accumulate_grad for a contribution that nothing writes into for the rest of the pass (the
// gradient a node shares with a leaf's .grad): a target that receives nothing else holds it
// as it is rather than a copy.
void accumulate_unchanging_grad(Node& target, Tensor contribution);

// Runs the nodes of `chain` (each the input node of the one before, all is_unary_map over one
// shape and dtype) as one pass: block by block, `grad` (the first node's gradient, in its
// shape or one value) goes through every rule in turn, and the result is added into the
// gradient of the last node's input. The gradients between stay in a cache-sized block.
void run_unary_chain(const std::vector<Node*>& chain, const Tensor& grad);

// The node that receives the gradient of `tensor`: its grad_fn, a leaf's AccumulateGrad,
// or null when it does not require grad (or is undefined: an optional input left out).
std::shared_ptr<Node> gradient_edge(const Tensor& tensor);

// Makes `node` the grad_fn of `tensor` in place of the old one (after an in-place op, or
// for a view re-derived from its base); a .grad that `tensor` retains follows.
void set_history(const std::shared_ptr<TensorImpl>& tensor, std::shared_ptr<Node> node);
// How many times set_history has run: the binding's collector support rechecks then which
// nodes are still the grad_fn of the tensor a hook was registered on.
uint64_t histories_set();

// A node that passes its gradient on to `input` seen in `input`'s shape: the grad_fn of a
// tensor of `shape` whose elements are those of `input`'s output (a view).
std::shared_ptr<Node> view_node(std::shared_ptr<Node> input, const Shape& shape, DType dtype, const char* name);

// Makes `output` the result of `node` when grad mode is on and some input requires grad;
// returns the node (to save tensors in), or null when nothing is recorded.
template <class NodeT>
NodeT* record(Tensor& output, std::initializer_list<const Tensor*> inputs);
// The same for a list of inputs known at run time (cat, stack).
template <class NodeT>
NodeT* record(Tensor& output, const std::vector<Tensor>& inputs);

// The tensors and nodes that the holder of `root` owns exclusively: those reached from
// it through strong references (grad_fn, next, saved tensors, a leaf's accumulator) whose
// every strong reference comes from the holder or from another of them, so that nothing
// else can reach them without going through the holder. `root` is among them when the
// holder's reference is its only one. Weak references do not count, and a node or tensor
// shared with anything else is not entered. The binding's garbage-collector support finds
// the Python objects a tensor's object owns this way.
struct ExclusivelyOwned {
  std::vector<TensorImpl*> tensors;
  std::vector<Node*> nodes;
};
ExclusivelyOwned exclusively_owned(const std::shared_ptr<TensorImpl>& root);

// The lock over what user code may change while a backward pass reads it, from a hook of the
// pass or from another thread (a pass runs without the GIL): the hook lists, a node's
// `retained` and a tensor's `grad`. It is held to copy or store one of them, never while user
// code or a kernel runs.
std::unique_lock<std::mutex> lock_user_state();

// Grad mode is per thread, on by default.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(is_grad_enabled()) { set_grad_enabled(enabled); }
  ~GradModeGuard() { set_grad_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

// Runs the nodes reachable from `roots` once each, in reverse recording order. With
// `inputs` empty, leaves' .grad accumulate; otherwise the gradients of `inputs` are
// returned and no .grad is touched (autograd.grad).
std::vector<Tensor> run_backward(const std::vector<Tensor>& roots,
                                 const std::vector<Tensor>& grad_roots, bool retain_graph,
                                 const std::vector<Tensor>& inputs = {});

// --- implementation of record() ---

namespace detail {

inline const Tensor& input_of(const Tensor* input) { return *input; }
inline const Tensor& input_of(const Tensor& input) { return input; }

// Makes `node` (its `next` filled in) the grad_fn of `output`.
void attach_node(Tensor& output, std::shared_ptr<Node> node);

template <class NodeT, class Inputs>
NodeT* record_inputs(Tensor& output, const Inputs& inputs) {
  if (!is_grad_enabled()) return nullptr;
  // Asks every input, without stopping at the first: a view whose base's history changed
  // takes its new grad_fn now, before the op's node, so the node's sequence number is larger.
  bool any = false;
  for (const auto& input : inputs) any = (input_of(input).defined() && input_of(input).requires_grad()) || any;
  if (!any) return nullptr;
  auto node = std::make_shared<NodeT>();
  node->next.reserve(inputs.size());
  for (const auto& input : inputs) node->next.push_back(gradient_edge(input_of(input)));
  NodeT* raw = node.get();
  attach_node(output, std::move(node));
  return raw;
}

}  // namespace detail

template <class NodeT>
NodeT* record(Tensor& output, std::initializer_list<const Tensor*> inputs) {
  return detail::record_inputs<NodeT>(output, inputs);
}

template <class NodeT>
NodeT* record(Tensor& output, const std::vector<Tensor>& inputs) {
  return detail::record_inputs<NodeT>(output, inputs);
}

}  // namespace tg
