// exclusively_owned: which part of a graph the holder of a tensor owns alone (what the
// binding's garbage-collector support may report as reachable from the tensor's object).
#include <gtest/gtest.h>

#include <algorithm>

#include "../testing.h"

namespace tg {
namespace {

using testing::leaf;

template <class T>
bool contains(const std::vector<T*>& owned, const T* object) {
  return std::find(owned.begin(), owned.end(), object) != owned.end();
}

TEST(Ownership, AHandleSharedWithAnotherOwnsNothing) {
  const Tensor x = leaf({1, 2}, Shape{2});
  ExclusivelyOwned owned = exclusively_owned(x.impl_ptr());
  EXPECT_EQ(owned.tensors, std::vector<TensorImpl*>{x.impl()});
  EXPECT_TRUE(owned.nodes.empty());

  const Tensor copy = x;
  owned = exclusively_owned(x.impl_ptr());
  EXPECT_TRUE(owned.tensors.empty());
  EXPECT_TRUE(owned.nodes.empty());
}

TEST(Ownership, AResultOwnsItsGraphButNotALeafHeldElsewhere) {
  Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = x * x;  // saves x twice; both edges lead to x's one accumulator
  std::shared_ptr<Node> mul = y.grad_fn();
  const Node* mul_raw = mul.get();
  const Node* accumulator = mul->next[0].get();
  ASSERT_EQ(accumulator, mul->next[1].get());

  // `mul` is held here as well: nothing past the result is owned.
  ExclusivelyOwned owned = exclusively_owned(y.impl_ptr());
  EXPECT_EQ(owned.tensors, std::vector<TensorImpl*>{y.impl()});
  EXPECT_TRUE(owned.nodes.empty());

  mul.reset();
  owned = exclusively_owned(y.impl_ptr());
  EXPECT_TRUE(contains(owned.nodes, mul_raw));
  EXPECT_TRUE(contains(owned.nodes, accumulator));  // both of its references come from `mul`
  EXPECT_FALSE(contains(owned.tensors, x.impl()));  // `x` holds the leaf too

  // With `x` gone, the leaf's references are the accumulator's and the two saved ones.
  TensorImpl* leaf_impl = x.impl();
  x = Tensor();
  owned = exclusively_owned(y.impl_ptr());
  EXPECT_TRUE(contains(owned.tensors, leaf_impl));
  EXPECT_EQ(owned.tensors.size(), 2u);
  EXPECT_EQ(owned.nodes.size(), 2u);
}

TEST(Ownership, ANodeSharedByTwoGraphsBelongsToNeither) {
  const Tensor x = leaf({1, 2}, Shape{2});
  Tensor h = x * 2.0;
  const Node* shared = h.grad_fn().get();
  Tensor a = sin(h);
  Tensor b = cos(h);
  h = Tensor();
  for (const Tensor* result : {&a, &b}) {
    const ExclusivelyOwned owned = exclusively_owned(result->impl_ptr());
    EXPECT_TRUE(contains(owned.nodes, result->grad_fn().get()));
    EXPECT_FALSE(contains(owned.nodes, shared));
  }

  b = Tensor();  // now `a` (its node, through the saved input and the edge) holds h's node alone
  const ExclusivelyOwned owned = exclusively_owned(a.impl_ptr());
  EXPECT_TRUE(contains(owned.nodes, shared));
}

TEST(Ownership, LongChainsAreWalkedWithoutRecursion) {
  testing::run_on_small_stack([] {
    Tensor y = leaf({1}, Shape{1});
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
    EXPECT_EQ(exclusively_owned(y.impl_ptr()).nodes.size(), 100001u);  // 100,000 muls and the accumulator
  });
}

}  // namespace
}  // namespace tg
