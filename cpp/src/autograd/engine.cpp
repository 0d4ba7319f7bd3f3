// The backward engine: gathers the nodes reachable from the roots with an explicit stack,
// then runs each once in reverse recording order (a reverse sweep over the tape, limited
// to the roots' ancestors). No recursion, so graph depth is unbounded.
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <utility>

#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {

class Engine {
 public:
  static std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                                 bool retain_graph, const std::vector<Tensor>& inputs);

 private:
  static std::vector<Node*> gather(const std::vector<std::shared_ptr<Node>>& roots, uint64_t pass);
};

namespace {

std::atomic<uint64_t> next_pass{1};

// One backward pass at a time, process-wide: graphs built on several threads may share
// nodes (a leaf's AccumulateGrad, above all), whose per-pass state is not per thread.
// Forward ops and their kernels still run in parallel.
std::mutex engine_mutex;
// Set while this thread runs a pass: a hook that starts another would wait on engine_mutex
// forever.
thread_local bool running_backward = false;

// Runs in a forked child, on its one thread, the one that forked. When that thread runs a
// pass (it forked from a hook), the pass goes on in the child and releases engine_mutex as
// usual. Otherwise a holder of the lock, if any, did not come along: the child starts with a
// free one. fork() does not wait for a pass in the parent: a pass may call Python hooks, which
// need the interpreter lock that the forking thread holds.
void free_engine_in_forked_child() {
  if (!running_backward) new (&engine_mutex) std::mutex();
}
const bool engine_fork_handler_installed = (pthread_atfork(nullptr, nullptr, &free_engine_in_forked_child), true);

// The gradient a root starts from: `gradient` checked against the root, or ones for a scalar.
Tensor root_gradient(const Tensor& root, const Tensor& gradient, size_t index) {
  TG_CHECK(root.requires_grad(), "element ", index, " of tensors does not require grad and does not have a grad_fn");
  if (!gradient.defined()) {
    TG_CHECK(root.numel() == 1, "grad can be implicitly created only for scalar outputs (got shape ",
             root.shape().str(), ")");
    return ones(root.shape(), root.dtype());
  }
  TG_CHECK(gradient.shape() == root.shape(), "Mismatch in shape: grad_output[", index, "] has a shape of ",
           gradient.shape().str(), " and output[", index, "] has a shape of ", root.shape().str(), ".");
  return to_dtype(gradient, root.dtype());  // any dtype, as torch converts it
}

// The hooks of the tensor whose gradient `node` receives, as registered now: a copy, so that
// a hook may register more (they run from the next pass on, as in torch) or another thread
// may, while these run.
std::vector<GradHook> hooks_of(const Node& node) {
  const auto lock = lock_user_state();
  return node.leaf() ? node.leaf()->hooks : node.hooks;
}

// Whether user code sees the gradient of one of the nodes in [first, last) during a pass: a
// hook, or a retained .grad.
template <class NodeIterator>
bool user_code_sees(NodeIterator first, NodeIterator last) {
  const auto lock = lock_user_state();
  return std::any_of(first, last, [](const Node* node) {
    return !(node->leaf() ? node->leaf()->hooks : node->hooks).empty() || !node->retained.expired();
  });
}

// Runs the hooks of `node` on its gradient, each on what the one before returned.
void run_hooks(Node& node) {
  for (const GradHook& hook : hooks_of(node)) {
    Tensor replaced = hook(node.grad);
    if (!replaced.defined()) continue;
    TG_CHECK(replaced.shape() == node.shape, "hook: expected a gradient of shape ", node.shape.str(),
             ", but the hook returned one of shape ", replaced.shape().str());
    TG_CHECK(replaced.dtype() == node.dtype, "hook has changed the type of value (was ", dtype_name(node.dtype),
             " got ", dtype_name(replaced.dtype()), ")");
    node.grad = std::move(replaced);
  }
}

// Adds the gradient of `node` into the .grad of the non-leaf that retains it, if any.
void fill_retained_grad(const Node& node) {
  std::shared_ptr<TensorImpl> retained;
  {
    const auto lock = lock_user_state();
    retained = node.retained.lock();
  }
  if (!retained) return;
  Tensor existing = Tensor(retained).grad();
  if (existing.defined())
    add_(existing, node.grad);
  else
    Tensor(retained).set_grad(clone(node.grad));
}

}  // namespace

std::vector<Node*> Engine::gather(const std::vector<std::shared_ptr<Node>>& roots, uint64_t pass) {
  std::vector<Node*> order, stack;
  // A node's per-pass state starts anew at its first visit. A finished pass leaves no
  // gradient behind (run's ClearGrads), but one that fork() cut short in another thread
  // leaves its gradients in the child.
  const auto visit = [&](Node* node) {
    if (node->visited_pass_ == pass) return;
    node->visited_pass_ = pass;
    node->dependencies_ = 0;
    node->grad = Tensor();
    node->shares_grad_with_input = -1;
    stack.push_back(node);
  };
  for (const auto& root : roots) {
    visit(root.get());
    ++root->dependencies_;  // its root gradient
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    order.push_back(node);
    for (const auto& edge : node->next) {
      if (!edge) continue;
      visit(edge.get());
      ++edge->dependencies_;
    }
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->sequence_nr_ > b->sequence_nr_; });
  return order;
}

std::vector<Tensor> Engine::run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                                bool retain_graph, const std::vector<Tensor>& inputs) {
  TG_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), "backward: got ", grad_roots.size(),
           " gradients for ", roots.size(), " outputs");
  TG_CHECK(!running_backward,
           "backward: called from inside a backward pass (from a hook); a pass cannot start another one");
  NoGradGuard no_grad;  // backward rules compute with ops that must not record
  std::lock_guard<std::mutex> one_pass_at_a_time(engine_mutex);
  struct RunningBackward {
    RunningBackward() { running_backward = true; }
    ~RunningBackward() { running_backward = false; }
  } running;
  const uint64_t pass = next_pass.fetch_add(1, std::memory_order_relaxed);

  std::vector<std::shared_ptr<Node>> root_nodes;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    root_grads.push_back(root_gradient(roots[i], i < grad_roots.size() ? grad_roots[i] : Tensor(), i));
    root_nodes.push_back(gradient_edge(roots[i]));
  }
  const std::vector<Node*> order = gather(root_nodes, pass);
  // Whatever happens, no gradient outlives the pass inside a node.
  struct ClearGrads {
    const std::vector<Node*>& nodes;
    ~ClearGrads() {
      for (Node* node : nodes) {
        node->grad = Tensor();
        node->shares_grad_with_input = -1;
        node->grad_is_leaf_grad = false;
      }
    }
  } clear_grads{order};

  // autograd.grad: the node whose gradient is each input's.
  std::vector<Node*> captured;
  for (const Tensor& input : inputs) {
    TG_CHECK(input.requires_grad(), "grad: one of the differentiated Tensors does not require grad");
    const std::shared_ptr<Node> node = input.is_leaf() ? input.impl()->grad_accumulator.lock() : input.grad_fn();
    TG_CHECK(node && node->visited_pass_ == pass,
             "grad: one of the differentiated Tensors appears to not have been used in the graph");
    captured.push_back(node.get());
  }
  const bool into_leaves = inputs.empty();
  // A pass that runs user code (hooks, which may also replace a .grad or retain one) reads a
  // leaf's .grad when the leaf's turn comes, as torch does. One that runs none makes the
  // shortcuts below; a hook registered or a grad retained on another thread meanwhile counts
  // from the next pass on.
  const bool runs_user_code = user_code_sees(order.begin(), order.end());

  // Leaves that have a .grad receive contributions into it directly, in place.
  if (into_leaves && !runs_user_code) {
    const auto lock = lock_user_state();
    for (Node* node : order)
      if (const TensorImpl* leaf = node->leaf()) {
        node->grad = Tensor(leaf->grad);
        node->grad_is_leaf_grad = leaf->grad != nullptr;
      }
  }

  // Whether something outside the rules sees the gradient of `node`: autograd.grad, or user code.
  const auto observed = [&](const Node* node) {
    return std::find(captured.begin(), captured.end(), node) != captured.end() ||
           (runs_user_code && user_code_sees(&node, &node + 1));
  };
  // A node that passes its gradient unchanged to a leaf used nowhere else (b in x*w + b)
  // shares the leaf's lazily zeroed .grad as its own: its gradient is then written there
  // once, not written and copied.
  if (into_leaves && !runs_user_code)
    for (Node* node : order)
      for (size_t k = 0; k < node->next.size(); ++k) {
        const Node* input = node->next[k].get();
        if (input && input->grad.defined() && input->dependencies_ == 1 && input->leaf() &&
            input->grad.storage()->zero_pending() && input->grad.shape() == node->shape &&
            input->grad.dtype() == node->dtype && node->passes_grad_unchanged(k) && !observed(node)) {
          node->grad = input->grad;
          node->shares_grad_with_input = int(k);
          break;
        }
      }

  for (size_t i = 0; i < root_nodes.size(); ++i) accumulate_grad(*root_nodes[i], root_grads[i]);

  std::vector<Tensor> results(inputs.size());
  // Whether the input node of a unary map `node` can join its chain: a unary map of the same
  // shape and dtype whose gradient comes from `node` alone and is seen by nothing else.
  const auto joins_chain = [&](const Node* node) {
    const Node* input = node->next[0].get();
    return input && input->is_unary_map() && input->dependencies_ == 1 && !input->grad.defined() &&
           input->shape == node->shape && input->dtype == node->dtype && !observed(input);
  };
  std::vector<Node*> chain;
  for (Node* node : order) {
    if (!node->grad.defined()) continue;  // no path from a root carried a gradient here
    if (node->shares_grad_with_input >= 0 && node->grad.storage()->zero_pending()) continue;  // nor here
    if (node->grad.shape() != node->shape && (observed(node) || !node->takes_broadcast_grad()))
      node->grad = expand_copy(node->grad, node->shape);  // a broadcast gradient, seen in full
    if (runs_user_code) run_hooks(*node);
    for (size_t i = 0; i < captured.size(); ++i)
      if (captured[i] == node) results[i] = clone(node->grad);
    if (node->leaf() && (!into_leaves || node->grad_is_leaf_grad)) continue;
    if (into_leaves && runs_user_code) fill_retained_grad(*node);
    chain.assign(1, node);
    if (node->is_unary_map() && (node->grad.numel() == 1 || node->grad.shape() == node->shape))
      while (joins_chain(chain.back())) chain.push_back(chain.back()->next[0].get());
    if (chain.size() > 1)
      run_unary_chain(chain, std::exchange(node->grad, Tensor()));  // the others get no .grad: skipped
    else
      node->apply(std::move(node->grad));
    if (!retain_graph)
      for (Node* done : chain) done->release_saved();
  }
  return results;
}

std::vector<Tensor> run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                                 bool retain_graph, const std::vector<Tensor>& inputs) {
  return Engine::run(roots, grad_roots, retain_graph, inputs);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  run_backward({*this}, {gradient}, retain_graph);
}

}  // namespace tg
