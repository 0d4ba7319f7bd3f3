// Reductions: sum, mean and norm (values by hand, gradients analytic and against central
// differences), their result dtypes, and sum_to_shape, the reverse of broadcasting.
#include <gtest/gtest.h>

#include <cmath>

#include "../testing.h"

namespace tg {
namespace {

using testing::Domain;
using testing::draw;
using testing::tensor;
using testing::values;

TEST(Sum, AddsEveryElementIntoA0dTensor) {
  const Tensor out = sum(tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3}));
  EXPECT_EQ(out.shape(), Shape{});
  EXPECT_EQ(out.dtype(), DType::Float32);
  EXPECT_EQ(out.item(), 21);
  EXPECT_EQ(sum(zeros(Shape{0, 3})).item(), 0);
  EXPECT_EQ(sum(tensor({2.5}, Shape{}, DType::Float64)).item(), 2.5);
}

TEST(Sum, OfIntegersAndBoolsIsInt64) {
  const Tensor integers = sum(tensor({1, -5, 7}, Shape{3}, DType::Int64));
  EXPECT_EQ(integers.dtype(), DType::Int64);
  EXPECT_EQ(integers.item(), 3);
  const Tensor bools = sum(tensor({1, 0, 1, 1}, Shape{4}, DType::Bool));
  EXPECT_EQ(bools.dtype(), DType::Int64);
  EXPECT_EQ(bools.item(), 3);  // counts the true elements
}

TEST(Sum, OfAMillionFloat32ValuesStaysAccurate) {
  // Accumulated naively in float32, 10^6 copies of 0.1f drift by about 1%.
  const int64_t n = 1'000'000;
  const Tensor out = sum(full(Shape{n}, 0.1));
  const double expected = double(n) * double(0.1f);
  EXPECT_NEAR(out.item(), expected, expected * 1e-6);
}

TEST(Sum, GradientIsOnesOfTheInputShape) {
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return sum(in[0]); },
                                  {draw(24, Domain::Real, 1)}, {Shape{2, 3, 4}});
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return sum(in[0]); },
                                  {draw(1, Domain::Real, 1, DType::Float32)}, {Shape{}}, DType::Float32);
  Tensor x = testing::leaf({}, Shape{2, 0});
  sum(x).backward();
  EXPECT_EQ(x.grad().shape(), (Shape{2, 0}));
}

TEST(Mean, IsTheSumOverTheCount) {
  EXPECT_EQ(mean(tensor({1, 2, 3, 4}, Shape{2, 2})).item(), 2.5);
  EXPECT_EQ(mean(tensor({1, 2}, Shape{2}, DType::Float64)).dtype(), DType::Float64);
  EXPECT_TRUE(std::isnan(mean(zeros(Shape{0})).item()));  // 0 / 0, as torch gives
  EXPECT_THROW(mean(tensor({1, 2}, Shape{2}, DType::Int64)), TypeError);
}

TEST(Mean, GradientIsOneOverTheCount) {
  Tensor x = testing::leaf({1, 2, 3, 4}, Shape{4});
  mean(x).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
  EXPECT_STREQ(mean(x).grad_fn()->name(), "MeanBackward0");
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return mean(in[0]); },
                                  {draw(6, Domain::Real, 2)}, {Shape{3, 2}});
}

TEST(Norm, IsTheEuclideanLengthOfAllElements) {
  EXPECT_EQ(norm(tensor({3, 4}, Shape{2})).item(), 5);
  EXPECT_EQ(norm(tensor({1, 2, 2, 4}, Shape{2, 2}, DType::Float64)).item(), 5);
  EXPECT_EQ(norm(zeros(Shape{0})).item(), 0);
  EXPECT_THROW(norm(tensor({1}, Shape{1}, DType::Int64)), TypeError);
}

TEST(Norm, GradientIsTheUnitVector) {
  Tensor x = testing::leaf({3, 4}, Shape{2});
  norm(x).backward();
  // d|x|/dx = x / |x|
  testing::expect_all_close(values(x.grad()), {0.6, 0.8}, 1e-7, 0, "gradient of norm");
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return norm(in[0]); },
                                  {draw(6, Domain::Real, 3)}, {Shape{2, 3}});
}

TEST(Norm, GradientAtZeroIsZero) {
  Tensor x = testing::leaf({0, 0, 0}, Shape{3}, DType::Float64);
  norm(x).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 0}));
}

// --- sum_to_shape ---

TEST(SumToShape, SumsLeadingDims) {
  const Tensor a = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const Tensor out = sum_to_shape(a, Shape{3});
  EXPECT_EQ(out.shape(), Shape{3});
  EXPECT_EQ(values(out), (std::vector<double>{5, 7, 9}));
}

TEST(SumToShape, SumsDimsOfSizeOneAndKeepsThem) {
  const Tensor a = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  EXPECT_EQ(sum_to_shape(a, Shape{2, 1}).shape(), (Shape{2, 1}));
  EXPECT_EQ(values(sum_to_shape(a, Shape{2, 1})), (std::vector<double>{6, 15}));
  EXPECT_EQ(values(sum_to_shape(a, Shape{1, 3})), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(values(sum_to_shape(a, Shape{1, 1})), (std::vector<double>{21}));
  EXPECT_EQ(values(sum_to_shape(a, Shape{2, 3})), values(a));
}

TEST(SumToShape, SumsBothKindsAtOnceIn3D) {
  // a[i][j][k] = 100 i + 10 j + k over shape (2, 2, 3); summed to (2, 1): over i and k.
  std::vector<double> data;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) data.push_back(100 * i + 10 * j + k);
  const Tensor out = sum_to_shape(tensor(data, Shape{2, 2, 3}, DType::Float64), Shape{2, 1});
  EXPECT_EQ(out.shape(), (Shape{2, 1}));
  // j = 0: sum over i, k of (100 i + k) = 3 * 100 + 2 * (0 + 1 + 2) = 306; j = 1 adds 10 * 6.
  EXPECT_EQ(values(out), (std::vector<double>{306, 366}));
}

TEST(SumToShape, ToA0dShapeSumsEverything) {
  EXPECT_EQ(sum_to_shape(tensor({1, 2, 3}, Shape{3}), Shape{}).item(), 6);
}

TEST(SumToShape, OverASizeZeroDimGivesZeros) {
  const Tensor out = sum_to_shape(zeros(Shape{0, 3}), Shape{1, 3});
  EXPECT_EQ(out.shape(), (Shape{1, 3}));
  EXPECT_EQ(values(out), (std::vector<double>{0, 0, 0}));
}

TEST(SumToShape, OfIntegersStaysExactInInt64) {
  const Tensor out = sum_to_shape(tensor({1, 2, 3, 4}, Shape{2, 2}, DType::Int64), Shape{2});
  EXPECT_EQ(out.dtype(), DType::Int64);
  EXPECT_EQ(values(out), (std::vector<double>{4, 6}));
}

TEST(SumToShape, IsNotRecorded) {
  const Tensor x = testing::leaf({1, 2, 3, 4}, Shape{2, 2});
  EXPECT_FALSE(sum_to_shape(x, Shape{2}).requires_grad());
}

}  // namespace
}  // namespace tg
