// Which part of a graph a tensor's holder owns alone: a local count of strong references,
// with no recursion.
#include <unordered_map>

#include "tapegrad/autograd.h"

namespace tg {

ExclusivelyOwned exclusively_owned(const std::shared_ptr<TensorImpl>& root) {
  ExclusivelyOwned owned;
  // Strong references seen so far from owned objects (and the holder), per object held more
  // than once: an object is owned once they account for all of its strong references. Most
  // are held once, and skip the map (the collector runs this walk often).
  std::unordered_map<const void*, long> seen;
  std::vector<TensorImpl*> tensor_stack;
  std::vector<Node*> node_stack;
  const auto reach = [&seen](const auto& pointer, auto& stack) {
    if (!pointer) return;
    const long references = pointer.use_count();
    if (references == 1 || ++seen[pointer.get()] == references) stack.push_back(pointer.get());
  };
  reach(root, tensor_stack);
  while (!tensor_stack.empty() || !node_stack.empty()) {
    if (!tensor_stack.empty()) {
      TensorImpl* tensor = tensor_stack.back();
      tensor_stack.pop_back();
      owned.tensors.push_back(tensor);
      // Not .grad: a retained gradient may be written by a backward pass on another thread,
      // and a gradient holds nothing that leads back into a graph.
      reach(tensor->grad_fn, node_stack);
      continue;
    }
    Node* node = node_stack.back();
    node_stack.pop_back();
    owned.nodes.push_back(node);
    for (const auto& edge : node->next) reach(edge, node_stack);
    node->for_each_saved([&](SavedTensor& saved) { reach(saved.held().impl_ptr(), tensor_stack); });
    if (auto* accumulator = dynamic_cast<AccumulateGrad*>(node)) reach(accumulator->leaf_ptr(), tensor_stack);
  }
  return owned;
}

}  // namespace tg
