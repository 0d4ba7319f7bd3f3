// Linear algebra: dot products, with their backward rules.
#include "rules.h"

namespace tg {

Tensor dot(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.ndim() == 1 && b.ndim() == 1, "dot: 1D tensors expected, but got ", a.ndim(), "D and ", b.ndim(),
           "D tensors");
  TG_CHECK(a.dtype() == b.dtype(), "dot: expected both vectors to have same dtype, but found ", dtype_name(a.dtype()),
           " and ", dtype_name(b.dtype()));
  TG_CHECK(a.numel() == b.numel(), "dot: inconsistent tensor size, expected tensor ", a.shape().str(),
           " and src ", b.shape().str(), " to have the same number of elements, but got ", a.numel(), " and ",
           b.numel(), " elements respectively");
  Tensor out = Tensor::empty(Shape{}, a.dtype());
  dispatch_arithmetic(a.dtype(), "dot", [&](auto zero) {
    using T = decltype(zero);
    const T* x = a.data<T>();
    const T* y = b.data<T>();
    T lanes[16] = {};  // independent partial sums, so the loop vectorises
    int64_t i = 0;
    const int64_t n = a.numel();
    for (; i + 16 <= n; i += 16)
      for (int k = 0; k < 16; ++k) lanes[k] += x[i + k] * y[i + k];
    for (; i < n; ++i) lanes[0] += x[i] * y[i];
    T total = 0;
    for (T lane : lanes) total += lane;
    *out.data<T>() = total;
  });
  record_product(out, a, b, "DotBackward0");  // d(a.b)/da = b, d(a.b)/db = a
  return out;
}

}  // namespace tg
