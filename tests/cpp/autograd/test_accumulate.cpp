// Gradient accumulation: leaves' .grad summed in place across backward calls (same buffer,
// memory stays flat), contributions reduced to a leaf's shape and converted to its dtype.
#include <gtest/gtest.h>

#include "../testing.h"

namespace tg {
namespace {

using testing::leaf;
using testing::values;

TEST(Accumulate, GradientsAddUpInPlaceAcrossBackwardCalls) {
  Tensor x = leaf({1, -2, 3}, Shape{3});
  sum(x * x).backward();
  const void* buffer = x.grad().raw_data();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, -4, 6}));

  sum(x * x).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4, -8, 12}));
  EXPECT_EQ(x.grad().raw_data(), buffer);

  sum(x * 3.0).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{7, -5, 15}));
  EXPECT_EQ(x.grad().raw_data(), buffer);
}

TEST(Accumulate, AHandleToDotGradSeesLaterBackwardCalls) {
  Tensor x = leaf({1, 2}, Shape{2});
  sum(x).backward();
  const Tensor held = x.grad();
  sum(x * 2.0).backward();
  EXPECT_EQ(values(held), (std::vector<double>{3, 3}));
}

TEST(Accumulate, ALaterBroadcastContributionIsReducedIntoTheExistingBuffer) {
  Tensor bias = leaf({0, 0, 0}, Shape{3});
  const Tensor x = testing::tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  sum(x + bias).backward();
  const void* buffer = bias.grad().raw_data();
  sum(x * bias).backward();
  EXPECT_EQ(values(bias.grad()), (std::vector<double>{2 + 5, 2 + 7, 2 + 9}));
  EXPECT_EQ(bias.grad().raw_data(), buffer);
}

TEST(Accumulate, ManyLeavesEachGetTheirOwnBuffer) {
  // The first contribution is moved into a leaf's .grad only when nothing else holds it:
  // two leaves of one add must not share a gradient buffer.
  Tensor a = leaf({1, 2}, Shape{2});
  Tensor b = leaf({3, 4}, Shape{2});
  sum(a + b).backward();
  EXPECT_NE(a.grad().raw_data(), b.grad().raw_data());
  Tensor a_grad = a.grad();
  zero_(a_grad);
  EXPECT_EQ(values(b.grad()), (std::vector<double>{1, 1}));

  Tensor c = leaf({1, 2}, Shape{2});
  const Tensor gradient = testing::tensor({1, 1}, Shape{2});
  (c + 0.0).backward(gradient);
  EXPECT_NE(c.grad().raw_data(), gradient.raw_data());  // the caller's gradient is not adopted
}

TEST(Accumulate, AGradientThatIsTheLeafsOwnZeroedBufferIsReadAsZeros) {
  // zero_ only marks the buffer, over the 2s of the first backward: the second backward must
  // still add zeros to zeros, from a node (the leaf's) and through an add that passes it on.
  Tensor a = leaf({1, 2}, Shape{2});
  Tensor b = leaf({3, 4}, Shape{2});
  sum((a + b) * 2.0).backward();
  Tensor a_grad = a.grad(), b_grad = b.grad();
  zero_(a_grad);
  zero_(b_grad);
  a.backward(a.grad());
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));
  (a + b).backward(b.grad());
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{0, 0}));
}

TEST(Accumulate, StepsWithZeroedGradsGiveTheSameGradientEachTime) {
  Tensor w = leaf({0.5, -1.5}, Shape{2}, DType::Float64);
  const Tensor x = testing::tensor({2, 3}, Shape{2}, DType::Float64);
  for (int step = 0; step < 3; ++step) {
    const Tensor residual = dot(w, x) - testing::tensor({1}, Shape{}, DType::Float64);
    (residual * residual).backward();
    // d(r^2)/dw = 2 r x with r = (1 - 4.5) - 1 = -4.5
    EXPECT_EQ(values(w.grad()), (std::vector<double>{-18, -27})) << "step " << step;
    Tensor grad = w.grad();
    zero_(grad);
  }
}

}  // namespace
}  // namespace tg
