// Elementwise ops: arithmetic with broadcasting and its backward rules, and comparisons.
// Each op's forward and backward sit together.
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "rules.h"
#include "loops.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

using loops::Input;

enum class Result { SameAsInputs, Bool };

// Broadcasts a and b, converts both to `dtype`, and fills a new tensor with op(a, b):
// of `dtype` for arithmetic, of bool for comparisons.
template <Result kResult, class Op>
Tensor binary_kernel(const char* name, const Tensor& a, const Tensor& b, DType dtype, Op op) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  const Tensor a_cast = to_dtype(a, dtype), b_cast = to_dtype(b, dtype);
  Tensor out = Tensor::empty(shape, kResult == Result::Bool ? DType::Bool : dtype);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    using R = std::conditional_t<kResult == Result::Bool, bool, T>;
    loops::map(out.data<R>(), shape, [&](T x, T y) { return static_cast<R>(op(x, y)); },
               Input<T>{a_cast.data<T>(), a.shape()}, Input<T>{b_cast.data<T>(), b.shape()});
  };
  if constexpr (kResult == Result::Bool)
    dispatch_all(dtype, run);
  else
    dispatch_arithmetic(dtype, name, run);
  return out;
}

// torch's result type: operands of the same kind (both 0-d, or both not) promote; a 0-d
// operand (a Python number included) wins over a dimensioned one only by a higher category.
DType result_type(const Tensor& a, const Tensor& b) {
  if ((a.ndim() == 0) == (b.ndim() == 0)) return promote_types(a.dtype(), b.dtype());
  const Tensor& zero_dim = a.ndim() == 0 ? a : b;
  const Tensor& dimensioned = a.ndim() == 0 ? b : a;
  return category(zero_dim.dtype()) > category(dimensioned.dtype()) ? zero_dim.dtype() : dimensioned.dtype();
}

// Arithmetic: both operands converted to their result type, which the result has too.
template <class Op>
Tensor arithmetic(const char* name, const Tensor& a, const Tensor& b, Op op, bool true_division = false) {
  DType dtype = result_type(a, b);
  if (dtype == DType::Bool) dtype = DType::Int64;
  if (true_division && !is_floating(dtype)) dtype = DType::Float32;
  return binary_kernel<Result::SameAsInputs>(name, a, b, dtype, op);
}

}  // namespace

// --- add, sub, neg ---

struct AddBackward final : Node {
  const char* name() const override { return "AddBackward0"; }
  void apply(Tensor grad) override {
    if (next[0]) accumulate_grad(*next[0], grad);  // d(a+b)/da = 1
    if (next[1]) accumulate_grad(*next[1], std::move(grad));  // d(a+b)/db = 1
  }
};

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("add", a, b, [](auto x, auto y) { return x + y; });
  record<AddBackward>(out, {&a, &b});
  return out;
}

struct SubBackward final : Node {
  const char* name_ = "SubBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    if (next[1]) accumulate_grad(*next[1], neg(grad));  // d(a-b)/db = -1
    if (next[0]) accumulate_grad(*next[0], std::move(grad));  // d(a-b)/da = 1
  }
};

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("sub", a, b, [](auto x, auto y) { return x - y; });
  record<SubBackward>(out, {&a, &b});
  return out;
}

Tensor rsub(const Tensor& a, double scalar) {
  const Tensor s = wrap_scalar(scalar, false, a);
  Tensor out = arithmetic("rsub", s, a, [](auto x, auto y) { return x - y; });
  if (auto* node = record<SubBackward>(out, {&s, &a})) node->name_ = "RsubBackward1";
  return out;
}

struct NegBackward final : Node {
  const char* name() const override { return "NegBackward0"; }
  void apply(Tensor grad) override { accumulate_grad(*next[0], neg(grad)); }  // d(-a)/da = -1
};

Tensor neg(const Tensor& a) {
  TG_CHECK_AS(TypeError, a.dtype() != DType::Bool, "neg: negation, the `-` operator, on a bool tensor is not supported");
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_arithmetic(a.dtype(), "neg", [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), a.shape(), [](T x) { return -x; }, Input<T>{a.data<T>(), a.shape()});
  });
  record<NegBackward>(out, {&a});
  return out;
}

// --- mul, div ---

struct MulBackward final : Node {
  SavedTensor a, b;  // each saved only when the other operand needs its gradient
  const char* name_ = "MulBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    if (next[0]) accumulate_grad(*next[0], mul(grad, b.unpack(*this)));  // d(a*b)/da = b
    if (next[1]) accumulate_grad(*next[1], mul(grad, a.unpack(*this)));  // d(a*b)/db = a
  }
  void release_saved() override {
    a.release();
    b.release();
  }
};

void record_product(Tensor& out, const Tensor& a, const Tensor& b, const char* node_name) {
  if (auto* node = record<MulBackward>(out, {&a, &b})) {
    node->name_ = node_name;
    if (node->next[0]) node->b = SavedTensor(b, false);
    if (node->next[1]) node->a = SavedTensor(a, false);
  }
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("mul", a, b, [](auto x, auto y) { return x * y; });
  record_product(out, a, b, "MulBackward0");
  return out;
}

struct DivBackward final : Node {
  SavedTensor a, b;
  const char* name() const override { return "DivBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& denominator = b.unpack(*this);
    if (next[1])  // d(a/b)/db = -a / b^2
      accumulate_grad(*next[1], gradient_map(*this, shape, grad, [](auto g, auto x, auto y) { return -g * x / (y * y); },
                                             a.unpack(*this), denominator));
    if (next[0]) accumulate_grad(*next[0], div(grad, denominator));  // d(a/b)/da = 1/b
  }
  void release_saved() override {
    a.release();
    b.release();
  }
};

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("div", a, b, [](auto x, auto y) { return x / y; }, /*true_division=*/true);
  if (auto* node = record<DivBackward>(out, {&a, &b})) {
    node->b = SavedTensor(b, false);
    if (node->next[1]) node->a = SavedTensor(a, false);
  }
  return out;
}

// --- pow ---

struct PowBackward final : Node {
  SavedTensor base, exponent, result;
  const char* name_ = "PowBackward1";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    const Tensor& a = base.unpack(*this);
    const Tensor& b = exponent.unpack(*this);
    if (next[0])  // d(a^b)/da = b * a^(b-1), taken as 0 where b == 0 (as torch does)
      accumulate_grad(*next[0], gradient_map(*this, shape, grad, [](auto g, auto x, auto y) {
                        return y == 0 ? decltype(g)(0) : g * y * std::pow(x, y - 1);
                      }, a, b));
    if (next[1])  // d(a^b)/db = a^b * log(a), taken as 0 where a == 0 and b >= 0
      accumulate_grad(*next[1], gradient_map(*this, shape, grad, [](auto g, auto x, auto y, auto r) {
                        return x == 0 && y >= 0 ? decltype(g)(0) : g * r * std::log(x);
                      }, a, b, result.unpack(*this)));
  }
  void release_saved() override {
    base.release();
    exponent.release();
    result.release();
  }
};

namespace {
Tensor pow_recorded(const Tensor& a, const Tensor& b, const char* node_name) {
  Tensor out = arithmetic("pow", a, b, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>) {
      T result = 1;  // exact integer power, as torch computes it
      for (T e = y; e > 0; --e) result *= x;
      return y < 0 ? T(x == 1 ? 1 : (x == -1 ? (y % 2 ? -1 : 1) : 0)) : result;
    } else {
      return std::pow(x, y);
    }
  });
  if (auto* node = record<PowBackward>(out, {&a, &b})) {
    node->name_ = node_name;
    node->base = SavedTensor(a, false);
    node->exponent = SavedTensor(b, false);
    if (node->next[1]) node->result = SavedTensor(out, true);
  }
  return out;
}
}  // namespace

Tensor pow(const Tensor& a, const Tensor& b) {
  return pow_recorded(a, b, b.ndim() == 0 && !b.requires_grad() ? "PowBackward0" : "PowBackward1");
}

Tensor rpow(const Tensor& a, double scalar) { return pow_recorded(wrap_scalar(scalar, false, a), a, "PowBackward2"); }

// --- comparisons ---

Tensor compare(const Tensor& a, const Tensor& b, Compare how) {
  static constexpr const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  const char* name = names[static_cast<int>(how)];
  const DType dtype = result_type(a, b);
  switch (how) {
    case Compare::Eq: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x == y; });
    case Compare::Ne: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x != y; });
    case Compare::Lt: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x < y; });
    case Compare::Le: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x <= y; });
    case Compare::Gt: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x > y; });
    case Compare::Ge: return binary_kernel<Result::Bool>(name, a, b, dtype, [](auto x, auto y) { return x >= y; });
  }
  TG_ASSERT(false);
}

bool all(const Tensor& a) {
  return dispatch_all(a.dtype(), [&](auto zero) {
    const auto* data = static_cast<const decltype(zero)*>(a.raw_data());
    for (int64_t i = 0, n = a.numel(); i < n; ++i)
      if (!data[i]) return false;
    return true;
  });
}

bool any(const Tensor& a) {
  return dispatch_all(a.dtype(), [&](auto zero) {
    const auto* data = static_cast<const decltype(zero)*>(a.raw_data());
    for (int64_t i = 0, n = a.numel(); i < n; ++i)
      if (data[i]) return true;
    return false;
  });
}

}  // namespace tg
