// Tensor handles: sizes, item, detach sharing the buffer and its version counter, and who
// may require gradients.
#include <gtest/gtest.h>

#include "../testing.h"

namespace tg {
namespace {

using testing::error_message;
using testing::tensor;
using testing::values;

TEST(Tensor, SizeWrapsNegativeDims) {
  const Tensor t = zeros(Shape{2, 3, 4});
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_THROW(t.size(3), std::out_of_range);
}

TEST(Tensor, ItemReadsTheOneElementOfAnyDtype) {
  EXPECT_EQ(tensor({2.5}, Shape{}, DType::Float32).item(), 2.5);
  EXPECT_EQ(tensor({-7}, Shape{1, 1}, DType::Int64).item(), -7.0);
  EXPECT_EQ(tensor({1}, Shape{}, DType::Bool).item(), 1.0);
  EXPECT_CONTAINS(error_message<std::runtime_error>([] { zeros(Shape{2}).item(); }), "2 elements");
}

TEST(Tensor, DetachSharesTheBufferAndVersionButNotTheGraph) {
  Tensor x = testing::leaf({1, 2, 3}, Shape{3});
  const Tensor y = x * 2.0;
  Tensor detached = y.detach();
  EXPECT_EQ(detached.raw_data(), y.raw_data());
  EXPECT_FALSE(detached.requires_grad());
  EXPECT_TRUE(detached.is_leaf());
  const uint64_t version = y.version();
  zero_(detached);
  EXPECT_EQ(y.version(), version + 1);
  EXPECT_EQ(values(y), (std::vector<double>{0, 0, 0}));
}

TEST(Tensor, OnlyFloatingLeavesMayRequireGrad) {
  Tensor integers = tensor({1, 2}, Shape{2}, DType::Int64);
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { integers.requires_grad_(); }), "int64");
  Tensor x = testing::leaf({1, 2}, Shape{2});
  Tensor y = x * 2.0;
  EXPECT_THROW(y.requires_grad_(false), std::runtime_error);
  x.requires_grad_(false);
  EXPECT_FALSE((x * 2.0).requires_grad());
}

TEST(Tensor, FromValuesChecksTheCount) {
  EXPECT_CONTAINS(error_message<std::invalid_argument>([] { tensor({1, 2, 3}, Shape{2, 2}); }), "(2, 2)");
}

}  // namespace
}  // namespace tg
