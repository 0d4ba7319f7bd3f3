// dot: values against sums computed in double, its checks, and its gradient.
#include <gtest/gtest.h>

#include "../testing.h"

namespace tg {
namespace {

using testing::Domain;
using testing::draw;
using testing::error_message;
using testing::tensor;

double reference_dot(const std::vector<double>& a, const std::vector<double>& b) {
  double total = 0;
  for (size_t i = 0; i < a.size(); ++i) total += a[i] * b[i];
  return total;
}

TEST(Dot, SmallVectorsByHand) {
  EXPECT_EQ(dot(tensor({1, 2, 3}, Shape{3}), tensor({4, 5, 6}, Shape{3})).item(), 32);
  EXPECT_EQ(dot(tensor({2}, Shape{1}, DType::Int64), tensor({-3}, Shape{1}, DType::Int64)).item(), -6);
  const Tensor empty = dot(zeros(Shape{0}), zeros(Shape{0}));
  EXPECT_EQ(empty.shape(), Shape{});
  EXPECT_EQ(empty.item(), 0);
}

TEST(Dot, MatchesADoubleSumAtLengthsAroundItsUnrolling) {
  for (int64_t n : {1, 15, 16, 17, 33, 1000}) {
    const std::vector<double> a = draw(n, Domain::Real, 1), b = draw(n, Domain::Real, 2);
    EXPECT_NEAR(dot(tensor(a, Shape{n}, DType::Float64), tensor(b, Shape{n}, DType::Float64)).item(),
                reference_dot(a, b), 1e-12 * double(n))
        << "length " << n;
  }
}

TEST(Dot, OfAMillionFloat32ValuesIsCloseToTheDoubleSum) {
  const int64_t n = 1'000'000;
  const std::vector<double> a = draw(n, Domain::Positive, 3, DType::Float32);
  const std::vector<double> b = draw(n, Domain::Positive, 4, DType::Float32);
  const double expected = reference_dot(a, b);
  // Positive terms: 16 float32 partial sums lose at most about n/16 * 2^-24 relatively.
  EXPECT_NEAR(dot(tensor(a, Shape{n}), tensor(b, Shape{n})).item(), expected, expected * 1e-3);
}

TEST(Dot, GradientOfEachFactorIsTheOther) {
  Tensor a = testing::leaf({1, 2, 3}, Shape{3});
  Tensor b = testing::leaf({4, 5, 6}, Shape{3});
  const Tensor out = dot(a, b);
  EXPECT_STREQ(out.grad_fn()->name(), "DotBackward0");
  out.backward();
  EXPECT_EQ(testing::values(a.grad()), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(testing::values(b.grad()), (std::vector<double>{1, 2, 3}));
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return dot(in[0], in[1]); },
                                  {draw(20, Domain::Real, 5), draw(20, Domain::Real, 6)}, {Shape{20}, Shape{20}});
}

TEST(Dot, RejectsWhatTorchRejects) {
  EXPECT_CONTAINS(error_message<std::runtime_error>([] { dot(zeros(Shape{2, 2}), zeros(Shape{4})); }), "1D");
  EXPECT_CONTAINS(error_message<std::runtime_error>([] { dot(zeros(Shape{3}), zeros(Shape{4})); }), "(3,)");
  EXPECT_CONTAINS(
      error_message<std::runtime_error>([] { dot(zeros(Shape{3}), zeros(Shape{3}, DType::Float64)); }),
      "same dtype");
}

}  // namespace
}  // namespace tg
