// Elementwise ops: arithmetic with broadcasting and its backward rules, and comparisons.
// Each op's forward and backward sit together.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

#include "kernels/vecmath.h"
#include "loops.h"
#include "rules.h"
#include "tapegrad/autograd.h"
#include "tapegrad/ops.h"

namespace tg {
namespace {

using loops::Input;

enum class Result { SameAsInputs, Bool };

// Broadcasts a and b, converts both to `dtype`, and fills a new tensor with op(a, b):
// of `dtype` for arithmetic, of bool for comparisons. Arithmetic in bool is C++'s, as torch's:
// + is or, * is and.
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
  dispatch_all(dtype, run);
  return out;
}

// torch's result type: operands of the same kind (0-d, or not) promote among themselves; the
// 0-d ones (Python numbers included) change the result only by a higher category. Undefined
// operands (absent bounds) are skipped.
DType result_type(std::initializer_list<const Tensor*> operands) {
  std::optional<DType> zero_dim, dimensioned;
  for (const Tensor* operand : operands) {
    if (!operand->defined()) continue;
    std::optional<DType>& kind = operand->ndim() == 0 ? zero_dim : dimensioned;
    kind = kind ? promote_types(*kind, operand->dtype()) : operand->dtype();
  }
  TG_ASSERT(zero_dim || dimensioned);
  if (!dimensioned) return *zero_dim;
  return zero_dim && category(*zero_dim) > category(*dimensioned) ? *zero_dim : *dimensioned;
}

DType result_type(const Tensor& a, const Tensor& b) { return result_type({&a, &b}); }

// Arithmetic: both operands converted to their result type, which the result has too.
template <class Op>
Tensor arithmetic(const char* name, const Tensor& a, const Tensor& b, Op op, bool true_division = false) {
  DType dtype = result_type(a, b);
  if (true_division && !is_floating(dtype)) dtype = DType::Float32;
  return binary_kernel<Result::SameAsInputs>(name, a, b, dtype, op);
}

}  // namespace

// --- add, sub, neg ---

namespace {
// The nodes of a + b and a - b, whose rules pass their gradient on (negated for b of a - b),
// to be summed down to each input's shape. A sum's gradient, one value for every element of
// the output, reaches each input as one value too: times the number of output elements each
// input element feeds, numel(out) / numel(in) (0 for an empty output), which is why they are
// not ElementwiseNodes. So nothing of the output's size is written.
struct PassingNode : Node {
  bool takes_broadcast_grad() const final { return true; }
  void apply(Tensor grad) final {
    if (grad.numel() == 1 && shape.numel() != 1) {
      const double value = grad.item();
      for (size_t k = 0; k < 2; ++k) {
        if (!next[k]) continue;
        const int64_t inputs = next[k]->shape.numel();
        const double feeds = inputs == 0 ? 0.0 : double(shape.numel() / inputs);
        accumulate_grad(*next[k], scalar_tensor(sign(k) * value * feeds, dtype));
      }
      return;
    }
    if (grad.shape() != shape) grad = expand_copy(grad, shape);  // a broadcast gradient of more than one value
    apply_full(std::move(grad));
  }

 private:
  virtual double sign(size_t input) const = 0;
  virtual void apply_full(Tensor grad) = 0;
};

struct AddBackward final : PassingNode {
  const char* name() const override { return "AddBackward0"; }
  double sign(size_t) const override { return 1; }  // d(a+b)/da = d(a+b)/db = 1
  bool passes_grad_unchanged(size_t) const override { return true; }
  void apply_full(Tensor grad) override {
    if (shares_grad_with_input < 0)
      accumulate_grad_shared(next[0].get(), next[1].get(), std::move(grad));
    else if (Node* other = next[1 - shares_grad_with_input].get())
      accumulate_unchanging_grad(*other, std::move(grad));  // the sharing input has it already
  }
};
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("add", a, b, loops::wrapping([](auto x, auto y) { return x + y; }));
  record<AddBackward>(out, {&a, &b});
  return out;
}

namespace {
struct SubBackward final : PassingNode {
  const char* name_ = "SubBackward0";
  const char* name() const override { return name_; }
  double sign(size_t input) const override { return input == 0 ? 1 : -1; }  // d(a-b)/da = 1, d(a-b)/db = -1
  bool passes_grad_unchanged(size_t input) const override { return input == 0; }
  void apply_full(Tensor grad) override {
    if (next[1]) accumulate_grad_map(*next[1], *this, shape, grad, [](auto g) { return -g; });
    if (next[0] && shares_grad_with_input != 0) accumulate_grad(*next[0], std::move(grad));
  }
};
}  // namespace

namespace {
void check_no_bool_sub(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dtype() != DType::Bool && b.dtype() != DType::Bool, "sub: subtraction, the `-` operator, with a bool ",
           "tensor or a bool is not supported (as in torch); for two masks use `^`, to invert one `~`");
}
}  // namespace

Tensor sub(const Tensor& a, const Tensor& b) {
  check_no_bool_sub(a, b);
  Tensor out = arithmetic("sub", a, b, loops::wrapping([](auto x, auto y) { return x - y; }));
  record<SubBackward>(out, {&a, &b});
  return out;
}

Tensor rsub(const Tensor& a, const Tensor& number) {
  check_no_bool_sub(number, a);
  Tensor out = arithmetic("rsub", number, a, loops::wrapping([](auto x, auto y) { return x - y; }));
  if (auto* node = record<SubBackward>(out, {&number, &a})) node->name_ = "RsubBackward1";
  return out;
}

namespace {
struct NegBackward final : ElementwiseNode {
  const char* name() const override { return "NegBackward0"; }
  void apply(Tensor grad) override { accumulate_grad_map(*next[0], *this, shape, grad, [](auto g) { return -g; }); }  // d(-a)/da = -1
};
}  // namespace

Tensor neg(const Tensor& a) {
  TG_CHECK_AS(TypeError, a.dtype() != DType::Bool, "neg: negation, the `-` operator, on a bool tensor is not supported");
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_arithmetic(a.dtype(), "neg", [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), a.shape(), loops::wrapping([](auto x) { return -x; }), Input<T>{a.data<T>(), a.shape()});
  });
  record<NegBackward>(out, {&a});
  return out;
}

// --- mul, div ---

namespace {
struct MulBackward final : ElementwiseNode {
  SavedTensor a, b;  // each saved only when the other operand needs its gradient
  const char* name_ = "MulBackward0";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    // Over the shape of grad * other: the output's, or a factor's for a product reduced afterwards (dot).
    const auto product_shape = [this](const Tensor& other) { return broadcast_shapes(shape, other.shape(), name_); };
    if (next[0] && next[1]) {  // both gradients in one pass, when both have a buffer to add into
      const Tensor& x = a.unpack(*this);
      const Tensor& y = b.unpack(*this);
      if (x.shape() == y.shape() &&
          accumulate_grad_maps_in_place(*next[0], *next[1], *this, product_shape(x), grad,
                                        [](auto g, auto, auto factor) { return g * factor; },
                                        [](auto g, auto factor, auto) { return g * factor; }, x, y))
        return;
    }
    const auto add_product = [&](Node& target, const Tensor& other) {
      accumulate_grad_map(target, *this, product_shape(other), grad, [](auto g, auto factor) { return g * factor; },
                          other);
    };
    if (next[0]) add_product(*next[0], b.unpack(*this));  // d(a*b)/da = b
    if (next[1]) add_product(*next[1], a.unpack(*this));  // d(a*b)/db = a
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(a);
    visit(b);
  }
};
}  // namespace

void record_product(Tensor& out, const Tensor& a, const Tensor& b, const char* node_name) {
  if (auto* node = record<MulBackward>(out, {&a, &b})) {
    node->name_ = node_name;
    if (node->next[0]) node->b = SavedTensor(b, false);
    if (node->next[1]) node->a = SavedTensor(a, false);
  }
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("mul", a, b, loops::wrapping([](auto x, auto y) { return x * y; }));
  record_product(out, a, b, "MulBackward0");
  return out;
}

namespace {
struct DivBackward final : ElementwiseNode {
  SavedTensor a, b;
  const char* name() const override { return "DivBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& denominator = b.unpack(*this);
    if (next[1])  // d(a/b)/db = -a / b^2
      accumulate_grad_map(*next[1], *this, shape, grad, [](auto g, auto x, auto y) { return -g * x / (y * y); }, a.unpack(*this),
                          denominator);
    if (next[0]) accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto y) { return g / y; }, denominator);  // d(a/b)/da = 1/b
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(a);
    visit(b);
  }
};
}  // namespace

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = arithmetic("div", a, b, [](auto x, auto y) { return x / y; }, /*true_division=*/true);
  if (auto* node = record<DivBackward>(out, {&a, &b})) {
    node->b = SavedTensor(b, false);
    if (node->next[1]) node->a = SavedTensor(a, false);
  }
  return out;
}

// --- pow ---

namespace {

// Calls fn(power) with power(x) = x^exponent for floating x, by the routes torch's pow kernel
// takes (so that results, zeros' signs and infinities included, are torch's): x*x for 2, x*x*x
// for 3, sqrt for 0.5, reciprocals for -0.5, -1 and -2. Other integer exponents of float32
// multiply by squaring in double (exact to within float32's rounding); the rest call std::pow.
// Each route is its own loop body, so each vectorises.
template <class T, class Fn>
void with_power(T exponent, Fn&& fn) {
  if (exponent == 0) return fn([](T) { return T(1); });  // even for nan, as std::pow
  if (exponent == 1) return fn([](T x) { return x; });
  if (exponent == 2) return fn([](T x) { return x * x; });
  if (exponent == 3) return fn([](T x) { return x * x * x; });
  if (exponent == 0.5) return fn([](T x) { return std::sqrt(x); });
  if (exponent == -0.5) return fn([](T x) { return 1 / std::sqrt(x); });
  if (exponent == -1) return fn([](T x) { return 1 / x; });
  if (exponent == -2) return fn([](T x) { return 1 / (x * x); });
  if constexpr (std::is_same_v<T, float>) {
    if (exponent == std::trunc(exponent) && std::abs(exponent) <= 64) {
      const auto magnitude = static_cast<uint32_t>(std::abs(exponent));
      return fn([magnitude, negative = exponent < 0](float x) {
        double result = 1, square = x;
        for (uint32_t bits = magnitude; bits != 0; bits >>= 1, square *= square)
          if (bits & 1) result *= square;
        return static_cast<float>(negative ? 1 / result : result);
      });
    }
  }
  fn([exponent](T x) { return std::pow(x, exponent); });
}

// The exponent of pow(a, b) when it is a number (b 0-d and needing no gradient) and the result
// is floating: the case with fast routes.
std::optional<double> scalar_exponent(const Tensor& b, DType result) {
  if (b.ndim() != 0 || b.requires_grad() || !is_floating(result)) return std::nullopt;
  return to_dtype(b, result).item();
}

// pow(a, b) for a number b.
struct ScalarPowBackward final : ElementwiseNode {
  SavedTensor base;
  double exponent = 0;
  const char* name() const override { return "PowBackward0"; }
  void apply(Tensor grad) override {
    with_rule([&](auto, auto rule) { accumulate_grad_map(*next[0], *this, shape, grad, rule, base.unpack(*this)); });
  }
  bool is_unary_map() const override { return base.held().defined() && base.held().dtype() == dtype; }
  void unary_grad(const void* grad_output, void* grad_input, int64_t begin, int64_t n) override {
    with_rule([&](auto zero, auto rule) {
      unary_rows(grad_output, base.unpack(*this).template data<decltype(zero)>() + begin, grad_input, n, rule);
    });
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(base); }

 private:
  // Calls fn(zero, rule) with rule(g, x) = g * d(x^b)/dx = g * b * x^(b-1), and 0 for b == 0
  // (as torch), in the node's dtype: that of `zero`.
  template <class Fn>
  void with_rule(Fn&& fn) const {
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      const T b = T(exponent);
      if (b == 0) return fn(zero, [](T, T) { return T(0); });
      with_power<T>(b - 1, [&](auto power) { fn(zero, [b, power](T g, T x) { return g * (b * power(x)); }); });
    });
  }
};

struct PowBackward final : ElementwiseNode {
  SavedTensor base, exponent, result;
  const char* name_ = "PowBackward1";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    const Tensor& a = base.unpack(*this);
    const Tensor& b = exponent.unpack(*this);
    if (next[0])  // d(a^b)/da = b * a^(b-1), taken as 0 where b == 0 (as torch does)
      accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto x, auto y) {
        return y == 0 ? decltype(g)(0) : g * y * std::pow(x, y - 1);
      }, a, b);
    if (next[1])  // d(a^b)/db = a^b * log(a), taken as 0 where a == 0 and b >= 0
      accumulate_grad_map(*next[1], *this, shape, grad, [](auto g, auto x, auto y, auto r) {
        return x == 0 && y >= 0 ? decltype(g)(0) : g * r * std::log(x);
      }, a, b, result.unpack(*this));
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(base);
    visit(exponent);
    visit(result);
  }
};

Tensor scalar_pow(const Tensor& a, DType dtype, double exponent) {
  const Tensor base = to_dtype(a, dtype);
  Tensor out = Tensor::empty(base.shape(), dtype);
  dispatch_floating(dtype, "pow", [&](auto zero) {
    using T = decltype(zero);
    with_power<T>(T(exponent), [&](auto power) {
      loops::map(out.data<T>(), base.shape(), power, Input<T>{base.data<T>(), base.shape()});
    });
  });
  if (auto* node = record<ScalarPowBackward>(out, {&a})) {
    node->base = SavedTensor(a, false);
    node->exponent = exponent;
  }
  return out;
}

// `exponent_is_number`: b is a number (wrap_scalar's), for which alone torch computes a bool
// result (its exponent is then 0 or 1; torch has no bool pow kernel otherwise).
Tensor pow_recorded(const Tensor& a, const Tensor& b, const char* node_name, bool exponent_is_number) {
  const DType dtype = result_type(a, b);
  TG_CHECK_AS(NotImplementedError, dtype != DType::Bool || exponent_is_number,
              "pow: not implemented for two bool operands (as in torch); convert one with .long() first");
  if (const std::optional<double> exponent = scalar_exponent(b, dtype)) return scalar_pow(a, dtype, *exponent);
  Tensor out = arithmetic("pow", a, b, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_same_v<T, bool>) {
      return x || !y;  // x^0 = 1, x^1 = x
    } else if constexpr (std::is_integral_v<T>) {
      // Exact integer power by squaring, as torch computes it; unsigned, so overflow wraps.
      uint64_t result = 1, square = static_cast<uint64_t>(x);
      for (T e = y; e > 0; e >>= 1, square *= square)
        if (e & 1) result *= square;
      return y < 0 ? T(x == 1 ? 1 : (x == -1 ? (y % 2 ? -1 : 1) : 0)) : static_cast<T>(result);
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
  return pow_recorded(a, b, b.ndim() == 0 && !b.requires_grad() ? "PowBackward0" : "PowBackward1",
                      /*exponent_is_number=*/false);
}

Tensor pow_number(const Tensor& a, const Tensor& number) {
  TG_CHECK(is_floating(a.dtype()) || is_floating(number.dtype()) || number.item() >= 0,
           "pow: integers to negative integer powers are not allowed (", dtype_name(a.dtype()), " tensor to the power ",
           number.item(), "); convert the tensor with .float() first");
  return pow_recorded(a, number, "PowBackward0", /*exponent_is_number=*/true);
}

Tensor rpow(const Tensor& a, const Tensor& number) {
  return pow_recorded(number, a, "PowBackward2", /*exponent_is_number=*/false);
}

// --- elementwise math: exp, log, sqrt, abs, sin, cos, tanh, sigmoid, relu ---
//
// Each unary op is a struct holding its value and its derivative side by side; `grad`
// returns the contribution g * dy/dx. The derivative reads the input x or the result y,
// whichever torch's reads, so that the same in-place edits invalidate it. The value is
// either `value`, a scalar function, or `row`, a vectorised kernel over a contiguous row.

namespace {

enum class Reads { Input, Output };

// Defaults: a floating op (integer and bool inputs give float32) whose derivative reads x,
// and whose value is a scalar function.
struct FloatingUnary {
  static constexpr Reads reads = Reads::Input;
  static constexpr bool keeps_int64 = false;
  static constexpr bool has_row_kernel = false;
};

struct RowKernel : FloatingUnary {
  static constexpr bool has_row_kernel = true;
};

struct Exp : RowKernel {
  static constexpr const char* name = "exp";
  static constexpr const char* grad_fn = "ExpBackward0";
  static constexpr Reads reads = Reads::Output;
  template <class T> static void row(const T* x, T* y, int64_t n) { kernels::exp(x, y, n); }
  template <class T> static T grad(T g, T y) { return g * y; }  // d(e^x)/dx = e^x = y
};

struct Log : RowKernel {
  static constexpr const char* name = "log";
  static constexpr const char* grad_fn = "LogBackward0";
  template <class T> static void row(const T* x, T* y, int64_t n) { kernels::log(x, y, n); }  // log(0) = -inf
  template <class T> static T grad(T g, T x) { return g / x; }  // d(log x)/dx = 1/x
};

struct Sqrt : FloatingUnary {
  static constexpr const char* name = "sqrt";
  static constexpr const char* grad_fn = "SqrtBackward0";
  static constexpr Reads reads = Reads::Output;
  template <class T> static T value(T x) { return std::sqrt(x); }
  template <class T> static T grad(T g, T y) { return g / (2 * y); }  // d(sqrt x)/dx = 1/(2 sqrt x): inf at 0
};

struct Abs {
  static constexpr const char* name = "abs";
  static constexpr const char* grad_fn = "AbsBackward0";
  static constexpr Reads reads = Reads::Input;
  static constexpr bool keeps_int64 = true;
  static constexpr bool has_row_kernel = false;
  template <class T> static T value(T x) {
    if constexpr (std::is_floating_point_v<T>) return std::abs(x);  // |-0| = +0
    else return x < 0 ? -x : x;
  }
  template <class T> static T grad(T g, T x) { return g * T((x > 0) - (x < 0)); }  // d|x|/dx = sign(x), 0 at 0 and nan
};

struct Sin : FloatingUnary {
  static constexpr const char* name = "sin";
  static constexpr const char* grad_fn = "SinBackward0";
  template <class T> static T value(T x) { return std::sin(x); }
  template <class T> static T grad(T g, T x) { return g * std::cos(x); }  // d(sin x)/dx = cos x
};

struct Cos : FloatingUnary {
  static constexpr const char* name = "cos";
  static constexpr const char* grad_fn = "CosBackward0";
  template <class T> static T value(T x) { return std::cos(x); }
  template <class T> static T grad(T g, T x) { return g * -std::sin(x); }  // d(cos x)/dx = -sin x
};

struct Tanh : RowKernel {
  static constexpr const char* name = "tanh";
  static constexpr const char* grad_fn = "TanhBackward0";
  static constexpr Reads reads = Reads::Output;
  template <class T> static void row(const T* x, T* y, int64_t n) { kernels::tanh(x, y, n); }  // saturates to +-1
  template <class T> static T grad(T g, T y) { return g * (1 - y * y); }  // d(tanh x)/dx = 1 - tanh^2 x
};

struct Sigmoid : RowKernel {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* grad_fn = "SigmoidBackward0";
  static constexpr Reads reads = Reads::Output;
  template <class T> static void row(const T* x, T* y, int64_t n) { kernels::sigmoid(x, y, n); }  // never overflows
  template <class T> static T grad(T g, T y) { return g * (1 - y) * y; }  // d(sigmoid x)/dx = (1 - y) y
};

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr const char* grad_fn = "ReluBackward0";
  static constexpr Reads reads = Reads::Output;
  static constexpr bool keeps_int64 = true;
  static constexpr bool has_row_kernel = false;
  template <class T> static T value(T x) { return x < 0 ? T(0) : x; }  // nan stays nan
  template <class T> static T grad(T g, T y) { return y <= 0 ? T(0) : g; }  // d(relu x)/dx = [y > 0]: 0 at 0
};

template <class Op>
struct UnaryBackward final : ElementwiseNode {
  SavedTensor saved;  // x or y, as Op::reads says
  const char* name() const override { return Op::grad_fn; }
  void apply(Tensor grad) override {
    accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto saved_value) { return Op::grad(g, saved_value); },
                        saved.unpack(*this));
  }
  bool is_unary_map() const override { return saved.held().defined() && saved.held().dtype() == dtype; }
  void unary_grad(const void* grad_output, void* grad_input, int64_t begin, int64_t n) override {
    dispatch_floating(dtype, name(), [&](auto zero) {
      using T = decltype(zero);
      unary_rows(grad_output, saved.unpack(*this).template data<T>() + begin, grad_input, n,
                 [](T g, T saved_value) { return Op::grad(g, saved_value); });
    });
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(saved); }
};

template <class Op>
Tensor unary(const Tensor& a) {
  TG_CHECK(!(Op::keeps_int64 && a.dtype() == DType::Bool), Op::name,
           ": bool tensors are not supported (as in torch); convert with .long() or .float() first");
  const bool keeps_dtype = is_floating(a.dtype()) || (Op::keeps_int64 && a.dtype() == DType::Int64);
  const Tensor input = keeps_dtype ? a : to_dtype(a, DType::Float32);
  Tensor out = Tensor::empty(input.shape(), input.dtype());
  auto run = [&](auto zero) {
    using T = decltype(zero);
    if constexpr (Op::has_row_kernel)
      Op::row(input.data<T>(), out.data<T>(), input.numel());  // one contiguous row
    else
      loops::map(out.data<T>(), input.shape(), [](T x) { return Op::value(x); }, Input<T>{input.data<T>(), input.shape()});
  };
  if constexpr (Op::keeps_int64)
    dispatch_arithmetic(input.dtype(), Op::name, run);
  else
    dispatch_floating(input.dtype(), Op::name, run);
  if (auto* node = record<UnaryBackward<Op>>(out, {&a}))
    node->saved = Op::reads == Reads::Output ? SavedTensor(out, /*is_output=*/true) : SavedTensor(a, false);
  return out;
}

}  // namespace

Tensor exp(const Tensor& a) { return unary<Exp>(a); }
Tensor log(const Tensor& a) { return unary<Log>(a); }
Tensor sqrt(const Tensor& a) { return unary<Sqrt>(a); }
Tensor abs(const Tensor& a) { return unary<Abs>(a); }
Tensor sin(const Tensor& a) { return unary<Sin>(a); }
Tensor cos(const Tensor& a) { return unary<Cos>(a); }
Tensor tanh(const Tensor& a) { return unary<Tanh>(a); }
Tensor sigmoid(const Tensor& a) { return unary<Sigmoid>(a); }
Tensor relu(const Tensor& a) { return unary<Relu>(a); }

// --- maximum, minimum, clamp ---

namespace {

// max and min that propagate nan from either side, as torch's do (std::max does not).
template <class T>
T larger(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  return a < b ? b : a;
}
template <class T>
T smaller(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  return b < a ? b : a;
}

// maximum and minimum differ only in which side of a comparison wins.
template <bool kMaximum>
struct ExtremumBackward final : ElementwiseNode {
  SavedTensor a, b;
  const char* name() const override { return kMaximum ? "MaximumBackward0" : "MinimumBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& x = a.unpack(*this);
    const Tensor& y = b.unpack(*this);
    // d max(a, b)/da = 1 where a wins, 0 where it loses, 1/2 at a tie (torch splits ties);
    // nan compares neither way, so both operands get the whole gradient there, as in torch.
    if (next[0])
      accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto p, auto q) {
                        return p == q ? g / 2 : (kMaximum ? p < q : p > q) ? decltype(g)(0) : g;
                      }, x, y);
    if (next[1])
      accumulate_grad_map(*next[1], *this, shape, grad, [](auto g, auto p, auto q) {
                        return p == q ? g / 2 : (kMaximum ? p > q : p < q) ? decltype(g)(0) : g;
                      }, x, y);
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(a);
    visit(b);
  }
};

template <bool kMaximum>
Tensor extremum(const Tensor& a, const Tensor& b) {
  const char* name = kMaximum ? "maximum" : "minimum";
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  const DType dtype = result_type(a, b);
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), shape, [](T x, T y) { return kMaximum ? larger(x, y) : smaller(x, y); },
               Input<T>{to_dtype(a, dtype).template data<T>(), a.shape()},
               Input<T>{to_dtype(b, dtype).template data<T>(), b.shape()});
  });
  if (auto* node = record<ExtremumBackward<kMaximum>>(out, {&a, &b})) {
    node->a = SavedTensor(a, false);
    node->b = SavedTensor(b, false);
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum<true>(a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum<false>(a, b); }

namespace {
struct ClampBackward final : ElementwiseNode {
  SavedTensor input, min, max;  // an absent bound is saved as -inf / +inf
  bool has_max = false;
  const char* name_ = "ClampBackward1";
  const char* name() const override { return name_; }
  void apply(Tensor grad) override {
    const Tensor& x = input.unpack(*this);
    const Tensor& lo = min.unpack(*this);
    const Tensor& hi = max.unpack(*this);
    if (next[0])  // d clamp/dx = 1 where min <= x <= max, boundaries included (as torch); 0 elsewhere and at nan
      accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto p, auto low, auto high) {
                        return p >= low && p <= high ? g : decltype(g)(0);
                      }, x, lo, hi);
    if (next.size() < 3) return;  // number bounds
    if (next[1])  // d clamp/dmin = 1 where x < min and min < max (else max is the result)
      accumulate_grad_map(*next[1], *this, shape, grad, [bounded = has_max](auto g, auto p, auto low, auto high) {
                        return p < low && (!bounded || low < high) ? g : decltype(g)(0);
                      }, x, lo, hi);
    if (next[2])  // d clamp/dmax = 1 where x > max or max < min
      accumulate_grad_map(*next[2], *this, shape, grad, [](auto g, auto p, auto low, auto high) {
                        return p > high || high < low ? g : decltype(g)(0);
                      }, x, lo, hi);
  }
  void for_each_saved(const SavedVisitor& visit) override {
    visit(input);
    visit(min);
    visit(max);
  }
};

// The stand-in for an absent bound: a 0-d tensor that clamps nothing (+-inf, or int64's extremes).
Tensor no_bound(DType dtype, bool upper) {
  Tensor bound = Tensor::empty(Shape{}, dtype);
  dispatch_arithmetic(dtype, "clamp", [&](auto zero) {
    using T = decltype(zero);
    using Limits = std::numeric_limits<T>;
    if constexpr (std::is_floating_point_v<T>)
      *bound.data<T>() = upper ? Limits::infinity() : -Limits::infinity();
    else
      *bound.data<T>() = upper ? Limits::max() : Limits::lowest();
  });
  return bound;
}

// Both forms of clamp: `min` and `max` are tensors or wrapped numbers, undefined when absent.
Tensor clamp_recorded(const Tensor& a, const Tensor& min, const Tensor& max, bool bounds_are_numbers) {
  TG_CHECK(min.defined() || max.defined(), "clamp: at least one of 'min' or 'max' must not be None");
  const DType dtype = result_type({&a, &min, &max});
  TG_CHECK(dtype != DType::Bool, "clamp: bool tensors are not supported (as in torch); convert with .long() or .float() first");
  const Tensor lo = min.defined() ? min : no_bound(dtype, false);
  const Tensor hi = max.defined() ? max : no_bound(dtype, true);
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), lo.shape(), "clamp"), hi.shape(), "clamp");
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_arithmetic(dtype, "clamp", [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), shape, [](T x, T low, T high) { return smaller(larger(x, low), high); },  // max wins where min > max
               Input<T>{to_dtype(a, dtype).template data<T>(), a.shape()},
               Input<T>{to_dtype(lo, dtype).template data<T>(), lo.shape()},
               Input<T>{to_dtype(hi, dtype).template data<T>(), hi.shape()});
  });
  ClampBackward* node = bounds_are_numbers ? record<ClampBackward>(out, {&a}) : record<ClampBackward>(out, {&a, &lo, &hi});
  if (node) {
    if (!bounds_are_numbers) node->name_ = "ClampBackward0";
    node->has_max = max.defined();
    node->input = SavedTensor(a, false);
    node->min = SavedTensor(lo, false);
    node->max = SavedTensor(hi, false);
  }
  return out;
}

}  // namespace

Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max, bool integral_bounds) {
  const auto wrap_bound = [&](double bound) {
    return integral_bounds ? wrap_scalar(static_cast<int64_t>(bound), a) : wrap_scalar(bound, a);
  };
  const Tensor lo = min ? wrap_bound(*min) : Tensor();
  const Tensor hi = max ? wrap_bound(*max) : Tensor();
  return clamp_recorded(a, lo, hi, /*bounds_are_numbers=*/true);
}

Tensor clamp(const Tensor& a, const Tensor& min, const Tensor& max) {
  return clamp_recorded(a, min, max, /*bounds_are_numbers=*/false);
}

// --- where ---

namespace {
struct WhereBackward final : ElementwiseNode {
  SavedTensor condition;
  const char* name() const override { return "WhereBackward0"; }
  void apply(Tensor grad) override {
    const Tensor& mask = condition.unpack(*this);
    if (next[0])  // d where(c, a, b)/da = c
      accumulate_grad_map(*next[0], *this, shape, grad, [](auto g, auto c) {
                        return c != 0 ? g : decltype(g)(0);
                      }, mask);
    if (next[1])  // d where(c, a, b)/db = not c
      accumulate_grad_map(*next[1], *this, shape, grad, [](auto g, auto c) {
                        return c != 0 ? decltype(g)(0) : g;
                      }, mask);
  }
  void for_each_saved(const SavedVisitor& visit) override { visit(condition); }
};
}  // namespace

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  TG_CHECK(condition.dtype() == DType::Bool,
           "where: expected condition to be a boolean tensor, but got a tensor with dtype ", dtype_name(condition.dtype()));
  const Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  const DType dtype = result_type(a, b);
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&](auto zero) {
    using T = decltype(zero);
    loops::map(out.data<T>(), shape, [](bool c, T x, T y) { return c ? x : y; },
               Input<bool>{condition.data<bool>(), condition.shape()},
               Input<T>{to_dtype(a, dtype).template data<T>(), a.shape()},
               Input<T>{to_dtype(b, dtype).template data<T>(), b.shape()});
  });
  if (auto* node = record<WhereBackward>(out, {&a, &b})) node->condition = SavedTensor(condition, false);
  return out;
}

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
