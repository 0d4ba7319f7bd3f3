// Reductions: sums over all elements or down to a shape, mean and norm, with their
// backward rules.
#include <cmath>
#include <limits>

#include "rules.h"
#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

struct Identity {
  double operator()(double x) const { return x; }
};

// The sum of f(x) over a row: eight partial sums in double precision, so a float32 sum
// stays accurate and the loop still vectorises.
template <class T, class F = Identity>
double sum_contiguous(const T* data, int64_t n, F f = {}) {
  double lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lanes[k] += f(double(data[i + k]));
  for (; i < n; ++i) lanes[0] += f(double(data[i]));
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// The dtype torch gives a sum: integers and bools sum to int64.
DType sum_dtype(DType dtype) { return is_floating(dtype) ? dtype : DType::Int64; }

}  // namespace

Tensor sum_to_shape(const Tensor& a, const Shape& shape) {
  // Keep a dim where `shape` keeps it; sum leading dims `shape` lacks and dims where it has 1.
  Shape kept;
  for (int d = 0; d < shape.ndim(); ++d) {
    const int da = d - (shape.ndim() - a.ndim());
    kept.push_back(shape[d] == 1 || da < 0 ? 1 : a.shape()[da]);
  }
  const DType dtype = sum_dtype(a.dtype());
  Tensor out = zeros(kept, dtype);
  const Tensor input = to_dtype(a, dtype);
  dispatch_arithmetic(dtype, "sum", [&](auto zero) {
    using T = decltype(zero);
    T* out_data = out.data<T>();
    const T* in = input.data<T>();
    loops::for_each_row<2>(a.shape(), {&kept, &a.shape()},
                           [&](const std::array<int64_t, 2>& offsets, int64_t n, const std::array<int64_t, 2>& steps) {
                             T* o = out_data + offsets[0];
                             const T* x = in + offsets[1];
                             if (steps[0] == 0)
                               *o += static_cast<T>(sum_contiguous(x, n));
                             else
                               for (int64_t i = 0; i < n; ++i) o[i] += x[i];
                           });
  });
  return out;
}

struct SumBackward final : Node {
  const char* name() const override { return "SumBackward0"; }
  void apply(Tensor grad) override { accumulate_grad(*next[0], std::move(grad)); }  // d(sum a)/da = 1, broadcast
};

Tensor sum(const Tensor& a) {
  Tensor out = sum_to_shape(a, Shape{});
  record<SumBackward>(out, {&a});
  return out;
}

struct MeanBackward final : Node {
  int64_t count = 0;
  const char* name() const override { return "MeanBackward0"; }
  void apply(Tensor grad) override {  // d(mean a)/da = 1/n, broadcast
    accumulate_grad(*next[0], div(grad, scalar_tensor(double(count), grad.dtype())));
  }
};

Tensor mean(const Tensor& a) {
  TG_CHECK_AS(TypeError, is_floating(a.dtype()),
              "mean(): could not infer output dtype. Input dtype must be a floating point dtype. Got: ",
              dtype_name(a.dtype()));
  Tensor out;
  {
    NoGradGuard no_grad;  // one node for the mean, not a sum and a div
    out = div(sum(a), scalar_tensor(double(a.numel()), a.dtype()));
  }
  if (auto* node = record<MeanBackward>(out, {&a})) node->count = a.numel();
  return out;
}

struct NormBackward final : Node {
  SavedTensor input, result;
  const char* name() const override { return "LinalgVectorNormBackward0"; }
  void apply(Tensor grad) override {  // d|a|/da = a / |a|, taken as 0 where |a| == 0
    accumulate_grad(*next[0], gradient_map(*this, input.unpack(*this).shape(), grad,
                                           [](auto g, auto x, auto r) { return r == 0 ? decltype(g)(0) : g * x / r; },
                                           input.unpack(*this), result.unpack(*this)));
  }
  void release_saved() override {
    input.release();
    result.release();
  }
};

Tensor norm(const Tensor& a) {
  Tensor out = Tensor::empty(Shape{}, a.dtype());
  dispatch_floating(a.dtype(), "norm", [&](auto zero) {
    using T = decltype(zero);
    const double squares = sum_contiguous(a.data<T>(), a.numel(), [](double x) { return x * x; });
    *out.data<T>() = static_cast<T>(std::sqrt(squares));
  });
  if (auto* node = record<NormBackward>(out, {&a})) {
    node->input = SavedTensor(a, false);
    node->result = SavedTensor(out, true);
  }
  return out;
}

}  // namespace tg
