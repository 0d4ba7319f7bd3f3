// Shape: printing, element counts, broadcasting (NumPy's rule) and dim wrapping.
#include <gtest/gtest.h>

#include <cctype>
#include <ostream>
#include <string>

#include "../testing.h"

namespace tg {
namespace {

using testing::error_message;

TEST(Shape, StrPrintsLikeAPythonTuple) {
  EXPECT_EQ(Shape{}.str(), "()");
  EXPECT_EQ(Shape{3}.str(), "(3,)");
  EXPECT_EQ((Shape{2, 3}).str(), "(2, 3)");
  EXPECT_EQ((Shape{0, 1, 4}).str(), "(0, 1, 4)");
}

TEST(Shape, NumelIsTheProductOfSizes) {
  EXPECT_EQ(Shape{}.numel(), 1);  // a 0-d tensor holds one element
  EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
  EXPECT_EQ((Shape{2, 0, 4}).numel(), 0);
}

TEST(Shape, RejectsNegativeSizesAndTooManyDims) {
  EXPECT_CONTAINS(error_message<std::invalid_argument>([] { Shape{2, -1}; }), "negative dimension -1");
  Shape eight{1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_THROW(eight.push_back(1), std::runtime_error);
}

struct BroadcastCase {
  Shape a, b, expected;
};

void PrintTo(const BroadcastCase& c, std::ostream* out) { *out << c.a.str() << " with " << c.b.str(); }

std::string case_name(const ::testing::TestParamInfo<BroadcastCase>& info) {
  std::string name = info.param.a.str() + "_" + info.param.b.str();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name + "_" + std::to_string(info.index);
}

class BroadcastShapes : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(BroadcastShapes, IsSymmetricAndFollowsNumPy) {
  const BroadcastCase& c = GetParam();
  EXPECT_EQ(broadcast_shapes(c.a, c.b, "add"), c.expected) << c.a.str() << " with " << c.b.str();
  EXPECT_EQ(broadcast_shapes(c.b, c.a, "add"), c.expected) << c.b.str() << " with " << c.a.str();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BroadcastShapes,
    ::testing::Values(BroadcastCase{{}, {}, {}}, BroadcastCase{{3}, {}, {3}}, BroadcastCase{{3}, {3}, {3}},
                      BroadcastCase{{2, 3}, {3}, {2, 3}}, BroadcastCase{{2, 1}, {1, 3}, {2, 3}},
                      BroadcastCase{{5, 1, 4}, {3, 1}, {5, 3, 4}}, BroadcastCase{{1}, {}, {1}},
                      BroadcastCase{{0}, {1}, {0}}, BroadcastCase{{0}, {}, {0}}, BroadcastCase{{2, 0}, {2, 1}, {2, 0}},
                      BroadcastCase{{1, 0, 3}, {4, 1, 1}, {4, 0, 3}}),
    case_name);

TEST(BroadcastShapesError, NamesTheOpAndBothShapes) {
  const std::string message =
      error_message<std::runtime_error>([] { broadcast_shapes(Shape{2, 3}, Shape{4}, "mul"); });
  EXPECT_CONTAINS(message, "mul");
  EXPECT_CONTAINS(message, "(2, 3)");
  EXPECT_CONTAINS(message, "(4,)");
}

TEST(BroadcastShapesError, SizeZeroDoesNotBroadcastAgainstSizeTwo) {
  EXPECT_THROW(broadcast_shapes(Shape{0}, Shape{2}, "add"), std::runtime_error);
  EXPECT_THROW(broadcast_shapes(Shape{2, 0}, Shape{3, 1}, "add"), std::runtime_error);
}

TEST(WrapDim, NegativeDimsCountFromTheEnd) {
  EXPECT_EQ(wrap_dim(0, 3, "sum"), 0);
  EXPECT_EQ(wrap_dim(2, 3, "sum"), 2);
  EXPECT_EQ(wrap_dim(-1, 3, "sum"), 2);
  EXPECT_EQ(wrap_dim(-3, 3, "sum"), 0);
}

TEST(WrapDim, AZeroDimTensorAcceptsZeroAndMinusOne) {
  EXPECT_EQ(wrap_dim(0, 0, "sum"), 0);
  EXPECT_EQ(wrap_dim(-1, 0, "sum"), 0);
  EXPECT_THROW(wrap_dim(1, 0, "sum"), std::out_of_range);
}

TEST(WrapDim, OutOfRangeRaisesIndexErrorNamingTheOpAndRange) {
  EXPECT_THROW(wrap_dim(-4, 3, "sum"), std::out_of_range);
  const std::string message = error_message<std::out_of_range>([] { wrap_dim(3, 3, "size"); });
  EXPECT_CONTAINS(message, "size");
  EXPECT_CONTAINS(message, "[-3, 2]");
  EXPECT_CONTAINS(message, "got 3");
}

}  // namespace
}  // namespace tg
