// Tape entries: recording an op's node, saved tensors, and releasing a graph without
// recursion.
#include <atomic>
#include <mutex>

#include "parallel/fork.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

std::atomic<uint64_t> next_sequence_nr{1};
std::atomic<uint64_t> set_history_calls{0};

// Drops `edges`; a node that dies with them has its own edges taken out first and is
// destroyed from a loop here, so releasing a chain of any length uses constant stack.
void release_iteratively(std::vector<std::shared_ptr<Node>>&& edges) {
  std::vector<std::shared_ptr<Node>> dying;
  for (auto& edge : edges)
    if (edge && edge.use_count() == 1) dying.push_back(std::move(edge));
  edges.clear();
  while (!dying.empty()) {
    std::shared_ptr<Node> node = std::move(dying.back());
    dying.pop_back();
    if (node.use_count() == 1)
      for (auto& edge : node->next)
        if (edge) dying.push_back(std::move(edge));
    // Whatever else the node holds (saved tensors) keeps only nodes that its edges hold
    // too, so this destructor does not recurse further.
  }
}

}  // namespace

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

Node::~Node() {
  if (!next.empty()) release_iteratively(std::move(next));
}

TensorImpl::~TensorImpl() {
  if (grad_fn && grad_fn.use_count() == 1) {
    std::vector<std::shared_ptr<Node>> edge(1, std::move(grad_fn));
    release_iteratively(std::move(edge));
  }
}

SavedTensor::SavedTensor(const Tensor& tensor, bool is_output)
    : tensor_(is_output ? tensor.detach() : tensor), version_(tensor.version()) {}

const Tensor& SavedTensor::unpack(const Node& owner) const {
  TG_CHECK(!released_,
           "Trying to backward through the graph a second time (or directly access saved tensors after "
           "they have already been freed). Saved intermediate values of the graph are freed when you call "
           ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
           "graph a second time or if you need to access saved tensors after calling backward. (in ",
           owner.name(), ")");
  TG_ASSERT(tensor_.defined());  // a rule unpacked what its op did not save
  TG_CHECK(tensor_.version() == version_,
           "one of the variables needed for gradient computation has been modified by an inplace "
           "operation: [", dtype_name(tensor_.dtype()), " ", tensor_.shape().str(), "], which is saved by ",
           owner.name(), ", is at version ", tensor_.version(), "; expected version ", version_,
           " instead. Hint: compute the value out of place (x = x + 1 rather than x += 1), or clone() "
           "it before modifying it.");
  return tensor_;
}

void Node::unary_grad(const void*, void*, int64_t, int64_t) {
  TG_ASSERT(is_unary_map());  // the engine asks only unary maps, which override this
}

void Node::release_saved() {
  for_each_saved([](SavedTensor& saved) { saved.release(); });
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : Node(0), leaf_(std::move(leaf)) {
  shape = leaf_->shape;
  dtype = leaf_->dtype;
}

void AccumulateGrad::apply(Tensor grad_output) {
  // .grad is read now, not when the pass began: a hook may have replaced or removed it.
  Tensor existing = Tensor(leaf_).grad();
  if (existing.defined())
    add_(existing, grad_output);
  else
    Tensor(leaf_).set_grad(grad_output.is_exclusive() ? grad_output : clone(grad_output));
}

std::shared_ptr<Node> gradient_edge(const Tensor& tensor) {
  if (!tensor.defined() || !tensor.requires_grad()) return nullptr;  // an optional input left out, or no grad needed
  if (tensor.grad_fn()) return tensor.grad_fn();
  TensorImpl* impl = tensor.impl();
  // Threads recording ops on one shared leaf must find the same accumulator.
  static ForkSafeMutex accumulator_mutex;
  std::lock_guard<std::mutex> lock(accumulator_mutex);
  std::shared_ptr<Node> accumulator = impl->grad_accumulator.lock();
  if (!accumulator) {
    accumulator = std::make_shared<AccumulateGrad>(tensor.impl_ptr());
    impl->grad_accumulator = accumulator;
  }
  return accumulator;
}

std::unique_lock<std::mutex> lock_user_state() {
  static ForkSafeMutex user_state_mutex;  // held briefly, never while user code runs
  return std::unique_lock<std::mutex>(user_state_mutex);
}

uint64_t histories_set() { return set_history_calls.load(std::memory_order_relaxed); }

void set_history(const std::shared_ptr<TensorImpl>& tensor, std::shared_ptr<Node> node) {
  set_history_calls.fetch_add(1, std::memory_order_relaxed);
  const std::shared_ptr<Node>& old = tensor->grad_fn;
  if (tensor->retains_grad && old) {
    const auto lock = lock_user_state();
    if (old->retained.lock() == tensor) {
      old->retained.reset();  // .grad now means the gradient of the new value
      node->retained = tensor;
    }
  }
  tensor->grad_fn = std::move(node);
  tensor->requires_grad = true;
}

void detail::attach_node(Tensor& output, std::shared_ptr<Node> node) {
  node->shape = output.shape();
  node->dtype = output.dtype();
  TensorImpl* impl = output.impl();
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
}

}  // namespace tg
