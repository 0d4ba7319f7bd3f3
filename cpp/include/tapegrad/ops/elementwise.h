// Elementwise ops with broadcasting (dtypes promote as in torch), and comparisons.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/tensor.h"
#include "tapegrad/ops/factory.h"

namespace tg {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
// For a number (wrapped by wrap_scalar) rather than a tensor as an operand, torch's rules for
// numbers: `a ** number` refuses a negative integer power of an integer or bool tensor (whose
// result would be a fraction), `number - a` and `number ** a` record the ops torch records
// for them (RsubBackward1, PowBackward2).
Tensor pow_number(const Tensor& a, const Tensor& number);
Tensor rsub(const Tensor& a, const Tensor& number);
Tensor rpow(const Tensor& a, const Tensor& number);

// --- elementwise math (torch's semantics at 0, at the infinities and for nan) ---
// Integer and bool inputs give float32 results, as in torch; abs and relu keep int64.
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);      // gradient sign(x): 0 at 0
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);     // gradient 0 at 0

// `a` limited to [min, max] elementwise (max wins where min > max; nan propagates); at least
// one bound is needed. The gradient passes where min <= a <= max, boundaries included.
// Number bounds (ClampBackward1): integral ones keep an int64 tensor's dtype, others make it float32.
Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max, bool integral_bounds = false);
// Tensor bounds (ClampBackward0), undefined for none: broadcast with `a`, and get gradients
// where they are the result.
Tensor clamp(const Tensor& a, const Tensor& min, const Tensor& max);

// Elementwise larger / smaller of two broadcast tensors, nan propagating; at a tie each
// operand gets half the gradient.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// a where `condition` (a bool tensor) holds, b elsewhere; all three broadcast.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// --- comparisons (not differentiable; bool results) ---
enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };
Tensor compare(const Tensor& a, const Tensor& b, Compare how);
bool all(const Tensor& a);
bool any(const Tensor& a);

// C++ operators for the harness and C++ users.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, wrap_scalar(s, a)); }
inline Tensor operator*(double s, const Tensor& a) { return mul(wrap_scalar(s, a), a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, wrap_scalar(s, a)); }

}  // namespace tg
