// Tape entries: saved tensors check their version at backward, and a 100,000-node chain is
// differentiated and released without recursion.
#include <gtest/gtest.h>

#include "../testing.h"

namespace tg {
namespace {

using testing::error_message;
using testing::leaf;
using testing::values;

TEST(SavedTensor, AnInPlaceWriteAfterSavingMakesBackwardNameTheOp) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  Tensor w = leaf({4, 5, 6}, Shape{3});
  const Tensor y = sum(x * w);  // MulBackward0 saves x (for w's gradient) at version 0
  {
    NoGradGuard no_grad;
    zero_(x);
  }
  const std::string message = error_message<std::runtime_error>([&] { y.backward(); });
  EXPECT_CONTAINS(message, "modified by an inplace operation");
  EXPECT_CONTAINS(message, "MulBackward0");
  EXPECT_CONTAINS(message, "float32 (3,)");
  EXPECT_CONTAINS(message, "is at version 1; expected version 0");
}

TEST(SavedTensor, AWriteThroughAViewIsSeenToo) {
  Tensor x = leaf({1, 2, 3, 4}, Shape{4}, DType::Float64);
  const Tensor y = sum(pow(x, testing::tensor({3}, Shape{}, DType::Float64)));
  Tensor view;
  {
    NoGradGuard no_grad;
    view = reshape(x, {2, 2});
    zero_(view);
  }
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { y.backward(); }), "PowBackward0");
}

TEST(SavedTensor, AnUnsavedInputMayBeWrittenFreely) {
  // x + w saves nothing, so writing x afterwards does not affect its backward.
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor w = leaf({3, 4}, Shape{2});
  const Tensor y = sum(x + w);
  {
    NoGradGuard no_grad;
    zero_(x);
  }
  y.backward();
  EXPECT_EQ(values(w.grad()), (std::vector<double>{1, 1}));
}

constexpr int kChainLength = 100'000;

// x, then kChainLength ops alternating y * w and y + 1 (w = 1), all in float64, so that
// y = x + kChainLength / 2, dy/dx = 1 and dy/dw = sum over the muls of their input
// = sum_{k < n} (x + k) with n = kChainLength / 2 muls.
struct Chain {
  Tensor x = leaf({0.5}, Shape{}, DType::Float64);
  Tensor w = leaf({1}, Shape{}, DType::Float64);
  Tensor y;
  Chain() {
    y = x;
    for (int i = 0; i < kChainLength / 2; ++i) y = y * w + 1.0;
  }
};

TEST(LongChain, BackwardAndReleaseUseConstantStack) {
  testing::run_on_small_stack([] {
    Chain chain;
    constexpr double n = kChainLength / 2;
    EXPECT_EQ(chain.y.item(), 0.5 + n);
    chain.y.backward();
    EXPECT_EQ(chain.x.grad().item(), 1);
    EXPECT_EQ(chain.w.grad().item(), n * 0.5 + n * (n - 1) / 2);
    chain.y = Tensor();  // releases the chain of nodes
  });
}

TEST(LongChain, ReleaseWithSavedTensorsStillHeldUsesConstantStack) {
  // Without a backward, every MulBackward0 still holds its saved input, and through it the
  // node before: releasing must stay iterative along that path too.
  testing::run_on_small_stack([] {
    Chain chain;
    chain.y = Tensor();
  });
}

TEST(LongChain, RetainGraphBackwardTwice) {
  testing::run_on_small_stack([] {
    Chain chain;
    chain.y.backward(Tensor(), /*retain_graph=*/true);
    chain.y.backward();
    EXPECT_EQ(chain.x.grad().item(), 2);
  });
}

}  // namespace
}  // namespace tg
