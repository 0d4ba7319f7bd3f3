// Elementwise ops with broadcasting (dtypes promote as in torch), and comparisons.
#pragma once

#include <cstdint>
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
// `scalar - a` and `scalar ** a` record the ops torch records for them (RsubBackward1, PowBackward2).
Tensor rsub(const Tensor& a, double scalar);
Tensor rpow(const Tensor& a, double scalar);

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
inline Tensor operator*(const Tensor& a, double s) { return mul(a, wrap_scalar(s, false, a)); }
inline Tensor operator*(double s, const Tensor& a) { return mul(wrap_scalar(s, false, a), a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, wrap_scalar(s, false, a)); }

}  // namespace tg
