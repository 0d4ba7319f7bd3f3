// Shape and dtype changes: reshape shares the buffer and its gradient is reshaped back;
// expand_copy, to_dtype and clone copy.
#include <gtest/gtest.h>

#include "../testing.h"

namespace tg {
namespace {

using testing::error_message;
using testing::tensor;
using testing::values;

TEST(Reshape, SharesTheBufferAndTheVersionCounter) {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Tensor b = reshape(a, {3, 2});
  EXPECT_EQ(b.shape(), (Shape{3, 2}));
  EXPECT_EQ(b.raw_data(), a.raw_data());
  EXPECT_EQ(b.storage(), a.storage());
  EXPECT_EQ(values(b), values(a));
  zero_(b);
  EXPECT_EQ(values(a), (std::vector<double>(6, 0)));
  EXPECT_EQ(a.version(), b.version());
}

TEST(Reshape, AnInPlaceOpThroughTheViewRewritesTheBasesHistory) {
  const Tensor x = testing::leaf({1, 2, 3, 4}, Shape{4});
  Tensor base = x * 1.0;
  Tensor view = reshape(base, {2, 2});
  const Tensor sibling = reshape(base, {4});
  mul_(view, tensor({1, 2, 3, 4}, Shape{2, 2}));
  EXPECT_STREQ(base.grad_fn()->name(), "CopySlices");
  sum(base * sibling).backward();  // base = sibling = x * w: d(sum(x^2 w^2))/dx = 2 x w^2
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 16, 54, 128}));
}

TEST(Reshape, AnInPlaceOpThroughAViewOfALeafRequiringGradRaises) {
  Tensor x = testing::leaf({1, 2}, Shape{2});
  Tensor view = reshape(x, {2, 1});
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { zero_(view); }), "a view of a leaf Variable");
}

TEST(Reshape, InfersOneSize) {
  const Tensor a = zeros(Shape{2, 3, 4});
  EXPECT_EQ(reshape(a, {-1}).shape(), Shape{24});
  EXPECT_EQ(reshape(a, {4, -1}).shape(), (Shape{4, 6}));
  EXPECT_EQ(reshape(a, {-1, 1, 2}).shape(), (Shape{12, 1, 2}));
  EXPECT_EQ(reshape(zeros(Shape{}), {1, -1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(reshape(zeros(Shape{0, 3}), {3, -1}).shape(), (Shape{3, 0}));
}

TEST(Reshape, RejectsInvalidSizes) {
  const Tensor a = zeros(Shape{2, 3});
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { reshape(a, {4, 2}); }), "[4, 2]' is invalid for input of size 6");
  EXPECT_THROW(reshape(a, {-1, -1}), std::runtime_error);
  EXPECT_THROW(reshape(a, {4, -1}), std::runtime_error);
  EXPECT_THROW(reshape(a, {-2, -3}), std::runtime_error);
  EXPECT_THROW(reshape(zeros(Shape{0}), {0, -1}), std::runtime_error);  // -1 could be anything
}

TEST(Reshape, GradientIsReshapedBack) {
  testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) { return mul(reshape(in[0], {3, 2}), tensor({1, 2}, Shape{2}, in[0].dtype())); },
      {testing::draw(6, testing::Domain::Real, 1)}, {Shape{2, 3}});
}

TEST(ExpandCopy, RepeatsAlongBroadcastDimsIntoANewBuffer) {
  const Tensor a = tensor({1, 2}, Shape{2, 1}, DType::Int64);
  const Tensor out = expand_copy(a, Shape{3, 2, 2});
  EXPECT_EQ(out.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(values(out), (std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2}));
  EXPECT_NE(out.raw_data(), a.raw_data());
  EXPECT_THROW(expand_copy(a, Shape{3}), std::runtime_error);
}

TEST(ToDtype, ConvertsLikeAStaticCast) {
  const Tensor a = tensor({1.75, -1.75, 0}, Shape{3}, DType::Float64);
  EXPECT_EQ(values(to_dtype(a, DType::Int64)), (std::vector<double>{1, -1, 0}));  // toward zero
  EXPECT_EQ(values(to_dtype(a, DType::Bool)), (std::vector<double>{1, 1, 0}));
  EXPECT_EQ(to_dtype(a, DType::Float64).raw_data(), a.raw_data());  // already float64: a itself
}

TEST(Clone, CopiesIntoItsOwnBuffer) {
  const Tensor a = tensor({1, 2, 3}, Shape{3});
  Tensor copy = clone(a);
  EXPECT_NE(copy.raw_data(), a.raw_data());
  zero_(copy);
  EXPECT_EQ(values(a), (std::vector<double>{1, 2, 3}));
}

}  // namespace
}  // namespace tg
