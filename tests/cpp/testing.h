// Helpers shared by the C++ suite: tensors from values and back, deterministic inputs, a
// broadcasting reference written with explicit index arithmetic, the one gradient check
// (central differences in float64), and running code on a small stack.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "tapegrad/tapegrad.h"

namespace tg {

// How GoogleTest prints a shape in failure messages and parameter lists.
inline void PrintTo(const Shape& shape, std::ostream* out) { *out << shape.str(); }

}  // namespace tg

namespace tg::testing {

inline Tensor tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::Float32) {
  return from_values(values, shape, dtype);
}

inline Tensor leaf(const std::vector<double>& values, const Shape& shape, DType dtype = DType::Float32) {
  Tensor out = tensor(values, shape, dtype);
  out.requires_grad_();
  return out;
}

// A tensor's elements as doubles, read straight from its buffer (no tapegrad op involved).
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  const void* data = t.raw_data();
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype()) {
      case DType::Float32: out[i] = static_cast<const float*>(data)[i]; break;
      case DType::Float64: out[i] = static_cast<const double*>(data)[i]; break;
      case DType::Int64: out[i] = double(static_cast<const int64_t*>(data)[i]); break;
      case DType::Bool: out[i] = static_cast<const bool*>(data)[i] ? 1.0 : 0.0; break;
    }
  }
  return out;
}

// Where a value of an input was drawn from: 'Real' in [-2, 2], 'Positive' in [0.5, 2]
// (bases of real powers), 'Nonzero' in +-[0.5, 2] (divisors).
enum class Domain { Real, Positive, Nonzero };

// `count` values of `domain` from a fixed seed, rounded through `dtype` so that a reference
// computed in double sees exactly the numbers the op sees.
inline std::vector<double> draw(int64_t count, Domain domain, uint64_t seed, DType dtype = DType::Float64) {
  std::mt19937_64 engine(seed);
  const auto unit = [&] { return double(engine() >> 11) * 0x1.0p-53; };  // uniform in [0, 1)
  std::vector<double> out(static_cast<size_t>(count));
  for (double& value : out) {
    switch (domain) {
      case Domain::Real: value = 4 * unit() - 2; break;
      case Domain::Positive: value = 0.5 + 1.5 * unit(); break;
      case Domain::Nonzero: value = (0.5 + 1.5 * unit()) * (unit() < 0.5 ? -1 : 1); break;
    }
    if (dtype == DType::Float32) value = double(float(value));
  }
  return out;
}

// The offset, in an operand of shape `operand` broadcast to `out`, of the element at row-major
// index `flat` of `out`: the reference for every broadcasting kernel.
inline int64_t broadcast_offset(const Shape& out, const Shape& operand, int64_t flat) {
  int64_t offset = 0, stride = 1;
  for (int d = out.ndim() - 1; d >= 0; --d) {
    const int64_t index = flat % out[d];
    flat /= out[d];
    const int d_operand = d - (out.ndim() - operand.ndim());
    if (d_operand < 0) continue;
    if (operand[d_operand] != 1) offset += index * stride;
    stride *= operand[d_operand];
  }
  return offset;
}

// |actual - expected| <= atol + rtol * |expected| elementwise, NaN matching NaN; `what` names
// the quantity in the failure message.
inline void expect_all_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol,
                             double atol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(actual[i])) << what << ", element " << i << ": expected NaN, got " << actual[i];
      continue;
    }
    EXPECT_LE(std::fabs(actual[i] - expected[i]), atol + rtol * std::fabs(expected[i]))
        << what << ", element " << i << ": got " << actual[i] << ", expected " << expected[i];
  }
}

// The message of the `Error` that `body` throws; a test failure when it throws nothing or
// something else.
template <class Error, class Body>
std::string error_message(Body&& body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "threw a different exception type: " << other.what();
    return {};
  }
  ADD_FAILURE() << "threw nothing";
  return {};
}

// Matches a string containing `part`, with both printed on failure.
#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

using Function = std::function<Tensor(const std::vector<Tensor>&)>;

// Tolerances of the gradient check: the gradient compounds the op's rounding (in `dtype`)
// with the error of central differences (step 1e-6: truncation ~1e-12, rounding ~1e-10).
struct GradTolerance {
  double rtol, atol;
};
inline GradTolerance grad_tolerance(DType dtype) {
  return dtype == DType::Float32 ? GradTolerance{1e-4, 1e-4} : GradTolerance{1e-6, 1e-7};
}

// Checks the gradient tapegrad computes for every input of `f` against central differences
// of sum(f(inputs) * weights) computed in float64, for fixed random weights passed as
// backward's `gradient` (so no other op takes part). Inputs are leaves of `dtype` holding
// `inputs[k]` (shape `shapes[k]`); the differences run on float64 copies of the same values.
inline void expect_gradients_match(const Function& f, const std::vector<std::vector<double>>& inputs,
                                   const std::vector<Shape>& shapes, DType dtype = DType::Float64) {
  constexpr double kStep = 1e-6;
  std::vector<Tensor> leaves;
  for (size_t k = 0; k < inputs.size(); ++k) leaves.push_back(leaf(inputs[k], shapes[k], dtype));
  const Tensor out = f(leaves);
  const std::vector<double> weights = draw(out.numel(), Domain::Real, 99, out.dtype());
  out.backward(tensor(weights, out.shape(), out.dtype()));

  // sum(f(inputs) * weights), all in float64.
  const auto loss = [&](const std::vector<std::vector<double>>& at) {
    NoGradGuard no_grad;
    std::vector<Tensor> point;
    for (size_t k = 0; k < at.size(); ++k) point.push_back(tensor(at[k], shapes[k], DType::Float64));
    const std::vector<double> result = values(f(point));
    double total = 0;
    for (size_t i = 0; i < result.size(); ++i) total += result[i] * weights[i];
    return total;
  };

  const GradTolerance tolerance = grad_tolerance(dtype);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor grad = leaves[k].grad();
    ASSERT_TRUE(grad.defined()) << "input " << k << " got no gradient";
    EXPECT_EQ(grad.shape(), shapes[k]) << "shape of the gradient of input " << k;
    EXPECT_EQ(grad.dtype(), dtype) << "dtype of the gradient of input " << k;
    std::vector<double> expected(inputs[k].size());
    for (size_t j = 0; j < inputs[k].size(); ++j) {
      std::vector<std::vector<double>> above = inputs, below = inputs;
      above[k][j] += kStep;
      below[k][j] -= kStep;
      expected[j] = (loss(above) - loss(below)) / (2 * kStep);
    }
    expect_all_close(values(grad), expected, tolerance.rtol, tolerance.atol,
                     "gradient of input " + std::to_string(k) + " against central differences");
  }
}

// Runs `body` on a thread whose stack is `stack_bytes` (1 MiB by default, an eighth of the
// main thread's): code that recurses once per node of a long graph overflows it, where an
// 8 MiB stack might hide the recursion.
inline void run_on_small_stack(const std::function<void()>& body, size_t stack_bytes = size_t(1) << 20) {
  pthread_attr_t attributes;
  ASSERT_EQ(pthread_attr_init(&attributes), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attributes, stack_bytes), 0);
  pthread_t thread;
  const auto start = [](void* argument) -> void* {
    (*static_cast<const std::function<void()>*>(argument))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attributes, start, const_cast<std::function<void()>*>(&body)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
}

}  // namespace tg::testing
