// Elementwise arithmetic with broadcasting (values against a reference computed in double with
// explicit index arithmetic, gradients against central differences), dtype promotion,
// comparisons and the in-place writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ostream>
#include <string>
#include <tuple>

#include "../testing.h"
#include "kernels/vecmath.h"

namespace tg {
namespace {

using testing::Domain;
using testing::draw;
using testing::error_message;
using testing::tensor;
using testing::values;

struct BinaryOp {
  const char* name;
  Tensor (*op)(const Tensor&, const Tensor&);
  double (*reference)(double, double);
  Domain a_domain, b_domain;
};

void PrintTo(const BinaryOp& op, std::ostream* out) { *out << op.name; }

const BinaryOp kBinaryOps[] = {
    {"add", add, [](double a, double b) { return a + b; }, Domain::Real, Domain::Real},
    {"sub", sub, [](double a, double b) { return a - b; }, Domain::Real, Domain::Real},
    {"mul", mul, [](double a, double b) { return a * b; }, Domain::Real, Domain::Real},
    {"div", div, [](double a, double b) { return a / b; }, Domain::Real, Domain::Nonzero},
    {"pow", pow, [](double a, double b) { return std::pow(a, b); }, Domain::Positive, Domain::Real},
};

// Shapes that break broadcasting: 0-d, size 1, size 0, leading dims missing, 3-D.
const std::pair<Shape, Shape> kShapePairs[] = {
    {{}, {}},         {{3}, {}},         {{}, {3}},          {{3}, {3}},          {{2, 3}, {3}},
    {{2, 1}, {1, 3}}, {{3, 1}, {2, 1, 4}}, {{4, 1, 3}, {1, 5, 1}}, {{1}, {}},       {{0}, {1}},
    {{2, 0}, {2, 1}}, {{}, {0, 3}},
};

const DType kFloatDtypes[] = {DType::Float32, DType::Float64};

using BinaryCase = std::tuple<BinaryOp, std::pair<Shape, Shape>, DType>;

std::string case_name(const ::testing::TestParamInfo<BinaryCase>& info) {
  const auto& [op, shapes, dtype] = info.param;
  std::string name = std::string(op.name) + "_" + dtype_name(dtype) + "_" + shapes.first.str() + "_" +
                     shapes.second.str();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name + "_" + std::to_string(info.index);
}

class BinaryOpTest : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(BinaryOpTest, ValueMatchesReferenceWithBroadcasting) {
  const auto& [op, shapes, dtype] = GetParam();
  const auto& [a_shape, b_shape] = shapes;
  const std::vector<double> a_values = draw(a_shape.numel(), op.a_domain, 1, dtype);
  const std::vector<double> b_values = draw(b_shape.numel(), op.b_domain, 2, dtype);
  const Tensor out = op.op(tensor(a_values, a_shape, dtype), tensor(b_values, b_shape, dtype));

  const Shape out_shape = broadcast_shapes(a_shape, b_shape, op.name);
  ASSERT_EQ(out.shape(), out_shape);
  EXPECT_EQ(out.dtype(), dtype);
  std::vector<double> expected(out_shape.numel());
  for (int64_t i = 0; i < out_shape.numel(); ++i)
    expected[i] = op.reference(a_values[testing::broadcast_offset(out_shape, a_shape, i)],
                               b_values[testing::broadcast_offset(out_shape, b_shape, i)]);
  // One rounding in the dtype (float32's pow may take a few ulps).
  const double rtol = dtype == DType::Float32 ? 1e-6 : 1e-14;
  testing::expect_all_close(values(out), expected, rtol, rtol, std::string(op.name) + " value");
}

TEST_P(BinaryOpTest, GradientsMatchCentralDifferences) {
  const auto& [op, shapes, dtype] = GetParam();
  const auto& [a_shape, b_shape] = shapes;
  testing::expect_gradients_match([&](const std::vector<Tensor>& in) { return op.op(in[0], in[1]); },
                                  {draw(a_shape.numel(), op.a_domain, 1, dtype),
                                   draw(b_shape.numel(), op.b_domain, 2, dtype)},
                                  {a_shape, b_shape}, dtype);
}

TEST_P(BinaryOpTest, FanOutSumsBothUsesOfOneTensor) {
  const auto& [op, shapes, dtype] = GetParam();
  const Shape& shape = shapes.first;
  // The same tensor as both operands: d f(x, x)/dx = f_a + f_b.
  testing::expect_gradients_match([&](const std::vector<Tensor>& in) { return op.op(in[0], in[0]); },
                                  {draw(shape.numel(), Domain::Positive, 3, dtype)}, {shape}, dtype);
}

INSTANTIATE_TEST_SUITE_P(Ops, BinaryOpTest,
                         ::testing::Combine(::testing::ValuesIn(kBinaryOps), ::testing::ValuesIn(kShapePairs),
                                            ::testing::ValuesIn(kFloatDtypes)),
                         case_name);

// Outputs of at least kernels::kStreamingBytes are written past the caches, in chunks split
// across threads: the values are the reference's all the same, misaligned rows and
// broadcast operands included, and so are large fills.
TEST(LargeOutputs, StreamedPastTheCachesHoldTheReferenceValues) {
  const int64_t n = kernels::kStreamingBytes / 4 + 5;
  const std::pair<Shape, Shape> shape_pairs[] = {{{n}, {n}}, {{n}, {}}, {{3, n / 3 + 1}, {3, 1}}};
  const int threads_before = get_num_threads();
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    for (const BinaryOp& op : kBinaryOps)
      for (const auto& [a_shape, b_shape] : shape_pairs) {
        const std::vector<double> a_values = draw(a_shape.numel(), op.a_domain, 1, DType::Float32);
        const std::vector<double> b_values = draw(b_shape.numel(), op.b_domain, 2, DType::Float32);
        const Tensor out = op.op(tensor(a_values, a_shape), tensor(b_values, b_shape));
        const std::vector<double> got = values(out);
        int64_t wrong = 0;
        for (int64_t i = 0; i < out.numel(); ++i) {
          const double expected = op.reference(a_values[testing::broadcast_offset(out.shape(), a_shape, i)],
                                               b_values[testing::broadcast_offset(out.shape(), b_shape, i)]);
          wrong += !(std::fabs(got[i] - expected) <= 1e-6 * (std::fabs(expected) + 1));
        }
        EXPECT_EQ(wrong, 0) << op.name << " " << a_shape.str() << " " << b_shape.str() << " on " << threads
                            << " threads";
      }
    Tensor filled = full(Shape{n}, 2.5, DType::Float64);
    zero_(filled);
    const std::vector<double> zeros_read = values(filled);
    EXPECT_EQ(std::count(zeros_read.begin(), zeros_read.end(), 0.0), n) << "zero_ on " << threads << " threads";
  }
  set_num_threads(threads_before);
}

TEST(Neg, NegatesAndItsGradientIsMinusOne) {
  const Tensor x = tensor({1.5, -2, 0}, Shape{3});
  EXPECT_EQ(values(neg(x)), (std::vector<double>{-1.5, 2, 0}));
  EXPECT_EQ(values(-tensor({3, -4}, Shape{2}, DType::Int64)), (std::vector<double>{-3, 4}));
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return neg(in[0]); },
                                  {draw(6, Domain::Real, 4)}, {Shape{2, 3}});
  EXPECT_THROW(neg(tensor({1}, Shape{1}, DType::Bool)), TypeError);
}

TEST(ScalarOperands, RsubAndRpowDifferentiateTheTensorOperand) {
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return rsub(in[0], wrap_scalar(2.5, in[0])); },
                                  {draw(4, Domain::Real, 5)}, {Shape{4}});
  testing::expect_gradients_match([](const std::vector<Tensor>& in) { return rpow(in[0], wrap_scalar(1.7, in[0])); },
                                  {draw(4, Domain::Real, 6)}, {Shape{4}});
  const Tensor x = tensor({1, 4}, Shape{2}), y = tensor({3, -1}, Shape{2});
  EXPECT_EQ(values(rsub(x, wrap_scalar(2.5, x))), (std::vector<double>{1.5, -1.5}));
  EXPECT_EQ(values(rpow(y, wrap_scalar(2.0, y))), (std::vector<double>{8, 0.5}));
}

TEST(ScalarOperands, APythonFloatKeepsTheTensorDtype) {
  const Tensor third = tensor({1}, Shape{1}, DType::Float32) * (1.0 / 3.0);
  EXPECT_EQ(third.dtype(), DType::Float32);
  EXPECT_EQ(values(third)[0], double(float(1.0 / 3.0)));
  EXPECT_EQ((tensor({1}, Shape{1}, DType::Int64) * 2.5).dtype(), DType::Float32);
  EXPECT_EQ(wrap_scalar(int64_t{2}, tensor({1}, Shape{1}, DType::Int64)).dtype(), DType::Int64);
}

TEST(ScalarOperands, AnIntegerMeetsAnInt64TensorExactly) {
  const int64_t large = (int64_t{1} << 60) + 1;  // a double holds 2^60, not 2^60 + 1
  const Tensor zero = tensor({0}, Shape{1}, DType::Int64);
  EXPECT_EQ(*(zero + wrap_scalar(large, zero)).data<int64_t>(), large);
  EXPECT_EQ(*full_integer(Shape{1}, large, DType::Int64).data<int64_t>(), large);
  EXPECT_THROW(pow_number(zero, wrap_scalar(int64_t{-1}, zero)), RuntimeError);  // as torch
}

TEST(PowGradient, AtAZeroExponentIsZeroEvenAtAZeroBase) {
  // d(a^0)/da = 0 everywhere; torch takes the same convention at a = 0 (where 0 * 0^-1 is NaN).
  Tensor a = testing::leaf({0, 2}, Shape{2}, DType::Float64);
  sum(pow(a, tensor({0}, Shape{}, DType::Float64))).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));
}

TEST(PowGradient, OfTheExponentIsZeroAtAZeroBase) {
  // d(0^b)/db = 0^b log 0 is taken as 0 for b >= 0, as torch does.
  Tensor b = testing::leaf({2}, Shape{1}, DType::Float64);
  sum(pow(tensor({0}, Shape{1}, DType::Float64), b)).backward();
  EXPECT_EQ(values(b.grad()), (std::vector<double>{0}));
}

TEST(IntegerArithmetic, IsExact) {
  const Tensor a = tensor({7, -7, 3}, Shape{3}, DType::Int64);
  const Tensor b = tensor({2, 2, 4}, Shape{3}, DType::Int64);
  EXPECT_EQ((a * b).dtype(), DType::Int64);
  EXPECT_EQ(values(a * b), (std::vector<double>{14, -14, 12}));
  EXPECT_EQ(values(a - b), (std::vector<double>{5, -9, -1}));
  EXPECT_EQ(values(pow(a, b)), (std::vector<double>{49, 49, 81}));
  const int64_t big = int64_t(1) << 60;  // beyond a double's 53 bits: no float detour
  const Tensor sum_big = tensor({double(big)}, Shape{1}, DType::Int64) + tensor({1}, Shape{1}, DType::Int64);
  EXPECT_EQ(sum_big.data<int64_t>()[0], big + 1);
}

// --- dtype promotion, as torch promotes ---

TEST(Promotion, Float32WithFloat64GivesFloat64) {
  const Tensor a = tensor({0.1}, Shape{1}, DType::Float32);
  const Tensor b = tensor({0.2}, Shape{1}, DType::Float64);
  for (const Tensor& out : {a + b, b + a, a * b, a / b, pow(a, b)}) EXPECT_EQ(out.dtype(), DType::Float64);
  // The float32 operand is widened, not the sum rounded: float(0.1) + 0.2 in double.
  EXPECT_EQ(values(a + b)[0], double(float(0.1)) + 0.2);
}

TEST(Promotion, Int64DividedByInt64IsTrueDivisionInFloat32) {
  const Tensor out = tensor({7, -7, 1}, Shape{3}, DType::Int64) / tensor({2, 2, 3}, Shape{3}, DType::Int64);
  EXPECT_EQ(out.dtype(), DType::Float32);
  EXPECT_EQ(values(out), (std::vector<double>{3.5, -3.5, double(1.0f / 3.0f)}));
}

TEST(Promotion, Int64WithAFloatGivesTheFloat) {
  const Tensor i = tensor({3}, Shape{1}, DType::Int64);
  EXPECT_EQ((i + tensor({0.5}, Shape{1}, DType::Float32)).dtype(), DType::Float32);
  EXPECT_EQ((tensor({0.5}, Shape{1}, DType::Float64) * i).dtype(), DType::Float64);
  EXPECT_EQ(values(i + tensor({0.5}, Shape{1}, DType::Float32)), (std::vector<double>{3.5}));
}

TEST(Promotion, ZeroDimTensorDoesNotPromoteADimensionedOneOfTheSameKind) {
  // torch: a 0-d operand counts like a scalar, so float64 0-d times float32 (2,) is float32.
  const Tensor zero_dim = tensor({2}, Shape{}, DType::Float64);
  const Tensor vector = tensor({1, 2}, Shape{2}, DType::Float32);
  EXPECT_EQ((zero_dim * vector).dtype(), DType::Float32);
  EXPECT_EQ((vector + zero_dim).dtype(), DType::Float32);
  // A higher kind still wins: a float 0-d tensor makes an int64 vector float.
  EXPECT_EQ((tensor({1, 2}, Shape{2}, DType::Int64) * tensor({0.5}, Shape{}, DType::Float64)).dtype(),
            DType::Float64);
  // Between two 0-d tensors the usual rule applies.
  EXPECT_EQ((zero_dim * tensor({1}, Shape{}, DType::Float32)).dtype(), DType::Float64);
}

TEST(Promotion, MixedDtypeGradientsKeepEachInputsDtype) {
  Tensor a = testing::leaf({1, 2}, Shape{2}, DType::Float32);
  Tensor b = testing::leaf({3, 4}, Shape{2}, DType::Float64);
  sum(a * b).backward();
  EXPECT_EQ(a.grad().dtype(), DType::Float32);
  EXPECT_EQ(b.grad().dtype(), DType::Float64);
  EXPECT_EQ(values(a.grad()), (std::vector<double>{3, 4}));  // d(a*b)/da = b
  EXPECT_EQ(values(b.grad()), (std::vector<double>{1, 2}));  // d(a*b)/db = a
}

TEST(Arithmetic, IncompatibleShapesNameBothShapes) {
  const std::string message =
      error_message<std::runtime_error>([] { add(zeros(Shape{2, 3}), zeros(Shape{2})); });
  EXPECT_CONTAINS(message, "add");
  EXPECT_CONTAINS(message, "(2, 3)");
  EXPECT_CONTAINS(message, "(2,)");
}

// --- comparisons ---

TEST(Compare, BroadcastsAndGivesBool) {
  const Tensor a = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const Tensor b = tensor({2, 5, 3}, Shape{3});
  const struct {
    Compare how;
    std::vector<double> expected;
  } cases[] = {
      {Compare::Eq, {0, 0, 1, 0, 1, 0}}, {Compare::Ne, {1, 1, 0, 1, 0, 1}}, {Compare::Lt, {1, 1, 0, 0, 0, 0}},
      {Compare::Le, {1, 1, 1, 0, 1, 0}}, {Compare::Gt, {0, 0, 0, 1, 0, 1}}, {Compare::Ge, {0, 0, 1, 1, 1, 1}},
  };
  for (const auto& c : cases) {
    const Tensor out = compare(a, b, c.how);
    EXPECT_EQ(out.dtype(), DType::Bool);
    EXPECT_EQ(out.shape(), (Shape{2, 3}));
    EXPECT_EQ(values(out), c.expected) << "comparison " << static_cast<int>(c.how);
  }
}

TEST(Compare, PromotesBeforeComparing) {
  // 2 < 2.5 only when the int64 is compared as a float.
  EXPECT_EQ(values(compare(tensor({2}, Shape{1}, DType::Int64), tensor({2.5}, Shape{}, DType::Float32), Compare::Lt)),
            (std::vector<double>{1}));
  // float(0.1) != 0.1 in float64.
  EXPECT_EQ(values(compare(tensor({0.1}, Shape{1}, DType::Float32), tensor({0.1}, Shape{1}, DType::Float64),
                           Compare::Eq)),
            (std::vector<double>{0}));
}

TEST(Compare, IsNotRecorded) {
  const Tensor x = testing::leaf({1, 2}, Shape{2});
  EXPECT_FALSE(compare(x, x, Compare::Eq).requires_grad());
}

TEST(AllAny, OfEmptyAndMixed) {
  EXPECT_TRUE(all(zeros(Shape{0}, DType::Bool)));
  EXPECT_FALSE(any(zeros(Shape{0}, DType::Bool)));
  EXPECT_TRUE(all(tensor({1, 2}, Shape{2})));
  EXPECT_FALSE(all(tensor({1, 0}, Shape{2})));
  EXPECT_TRUE(any(tensor({0, 3}, Shape{2}, DType::Int64)));
  EXPECT_FALSE(any(tensor({0, 0}, Shape{2}, DType::Float64)));
}

// --- in-place ---

TEST(InPlace, AddBroadcastsIntoTheLeftOperandAndBumpsTheVersion) {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const void* data = a.raw_data();
  const uint64_t version = a.version();
  add_(a, tensor({10, 20, 30}, Shape{3}));
  EXPECT_EQ(values(a), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(a.raw_data(), data);
  EXPECT_EQ(a.version(), version + 1);
}

TEST(InPlace, AddRejectsAGrowingShapeAndAHigherCategory) {
  Tensor a = zeros(Shape{3});
  EXPECT_THROW(add_(a, zeros(Shape{2, 3})), std::runtime_error);
  // As in torch, float64 may be cast into float32 in place, but no float into an int64.
  add_(a, tensor({0.5, 1, 2}, Shape{3}, DType::Float64));
  EXPECT_EQ(values(a), (std::vector<double>{0.5, 1, 2}));
  Tensor integers = zeros(Shape{3}, DType::Int64);
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { add_(integers, a); }), "can't be cast");
}

TEST(InPlace, ZeroFillsAndKeepsTheBuffer) {
  Tensor a = tensor({1, 2, 3}, Shape{3}, DType::Int64);
  const void* data = a.raw_data();
  zero_(a);
  EXPECT_EQ(values(a), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(a.raw_data(), data);
}

TEST(InPlace, OnALeafThatRequiresGradIsRefusedUnderGradMode) {
  Tensor x = testing::leaf({1, 2}, Shape{2});
  EXPECT_CONTAINS(error_message<std::runtime_error>([&] { zero_(x); }), "leaf Variable");
  NoGradGuard no_grad;
  zero_(x);  // allowed, as torch allows it under no_grad
  EXPECT_EQ(values(x), (std::vector<double>{0, 0}));
}

}  // namespace
}  // namespace tg
