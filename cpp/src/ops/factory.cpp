// Tensor factories: filled, ranges, random, from host values, and wrapped Python numbers.
#include <cmath>
#include <mutex>
#include <random>

#include "loops.h"
#include "parallel/fork.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

struct Generator {
  ForkSafeMutex mutex;
  std::mt19937_64 engine{0x5eed};
};
Generator& generator() {
  static Generator instance;
  return instance;
}

}  // namespace

namespace {
// `value` converted straight to `dtype` in every element: an int64 never passes through a
// double, which holds integers exactly only up to 2^53.
template <class Value>
Tensor filled(const Shape& shape, Value value, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&](auto zero) {
    using T = decltype(zero);
    loops::fill(out.data<T>(), out.numel(), static_cast<T>(value));
  });
  return out;
}
}  // namespace

Tensor full(const Shape& shape, double value, DType dtype) { return filled(shape, value, dtype); }
Tensor full_integer(const Shape& shape, int64_t value, DType dtype) { return filled(shape, value, dtype); }

Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1, dtype); }
Tensor scalar_tensor(double value, DType dtype) { return full(Shape{}, value, dtype); }

Tensor wrap_scalar(double value, const Tensor& like) {
  return scalar_tensor(value, is_floating(like.dtype()) ? like.dtype() : DType::Float32);
}

Tensor wrap_scalar(int64_t value, const Tensor& like) {
  return filled(Shape{}, value, like.dtype() == DType::Bool ? DType::Int64 : like.dtype());
}

Tensor arange(double start, double end, double step, DType dtype) {
  TG_CHECK_AS(ValueError, step != 0, "arange: step must be nonzero");
  TG_CHECK_AS(ValueError, std::isfinite(start) && std::isfinite(end), "arange: unsupported range: ", start, " -> ", end);
  TG_CHECK_AS(ValueError, (step > 0 && end >= start) || (step < 0 && end <= start),
              "arange: upper bound and larger bound inconsistent with step sign");
  const auto numel = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor out = Tensor::empty(Shape{numel}, dtype);
  dispatch_arithmetic(dtype, "arange", [&](auto zero) {
    using T = decltype(zero);
    T* data = out.data<T>();
    parallel_for(numel, kParallelGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) data[i] = static_cast<T>(start + double(i) * step);
    });
  });
  return out;
}

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generator().mutex);
  generator().engine.seed(seed);
}

namespace {
// A tensor of draws from `distribution` with the global generator, converted to `dtype`.
template <class Distribution>
Tensor sample(const char* op, const Shape& shape, DType dtype, Distribution distribution, bool floating_only = true) {
  Tensor out = Tensor::empty(shape, dtype);
  const auto fill = [&](auto zero) {
    using T = decltype(zero);
    T* data = out.data<T>();
    std::lock_guard<std::mutex> lock(generator().mutex);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) data[i] = static_cast<T>(distribution(generator().engine));
  };
  if (floating_only)
    dispatch_floating(dtype, op, fill);
  else
    dispatch_arithmetic(dtype, op, fill);
  return out;
}
}  // namespace

Tensor randn(const Shape& shape, DType dtype) {
  return sample("randn", shape, dtype, std::normal_distribution<double>());
}

Tensor rand(const Shape& shape, DType dtype) {
  return sample("rand", shape, dtype, std::uniform_real_distribution<double>(0.0, 1.0));
}

Tensor normal(double mean, double std, const Shape& shape, DType dtype) {
  TG_CHECK(std >= 0, "normal: expects std >= 0.0, but found std ", std);
  return sample("normal", shape, dtype, std::normal_distribution<double>(mean, std));
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  TG_CHECK(low < high, "randint: random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  return sample("randint", shape, dtype, std::uniform_int_distribution<int64_t>(low, high - 1), /*floating_only=*/false);
}

template <class T>
Tensor from_values(const std::vector<T>& values, const Shape& shape, DType dtype) {
  TG_CHECK_AS(ValueError, int64_t(values.size()) == shape.numel(), "tensor: ", values.size(),
              " values cannot fill a tensor of shape ", shape.str());
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&](auto zero) {
    using Out = decltype(zero);
    Out* data = out.data<Out>();
    for (size_t i = 0; i < values.size(); ++i) data[i] = static_cast<Out>(values[i]);
  });
  return out;
}
template Tensor from_values(const std::vector<float>&, const Shape&, DType);
template Tensor from_values(const std::vector<double>&, const Shape&, DType);
template Tensor from_values(const std::vector<int64_t>&, const Shape&, DType);

}  // namespace tg
