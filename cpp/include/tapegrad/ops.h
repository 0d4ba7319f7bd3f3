// The differentiable operations and the tensor factories of the C++ API.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

// --- factories ---
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor scalar_tensor(double value, DType dtype);
// start, start + step, ... up to (excluding) end.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::Float32);
Tensor randn(const Shape& shape, DType dtype = DType::Float32);
void manual_seed(uint64_t seed);
// Copies `data` (numel values of `shape`) converted to `dtype`.
template <class T>
Tensor from_values(const std::vector<T>& data, const Shape& shape, DType dtype);

// --- elementwise arithmetic, broadcasting both operands; dtypes promote as in torch ---
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
// `scalar - a` and `scalar ** a` record the ops torch records for them (RsubBackward1, PowBackward2).
Tensor rsub(const Tensor& a, double scalar);
Tensor rpow(const Tensor& a, double scalar);

// A Python-style number as an operand of `like`: a float keeps a floating tensor's dtype
// (and makes an int64 one float32), an integer keeps the tensor's dtype.
Tensor wrap_scalar(double value, bool is_integral, const Tensor& like);

// --- comparisons (not differentiable; bool results) ---
enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };
Tensor compare(const Tensor& a, const Tensor& b, Compare how);
bool all(const Tensor& a);
bool any(const Tensor& a);

// --- reductions ---
Tensor sum(const Tensor& a);
// Sums `a` down to a shape that broadcasts to `shape` (dims of size 1 where `shape` has 1,
// leading dims `shape` lacks removed): the reverse of broadcasting. Not recorded.
Tensor sum_to_shape(const Tensor& a, const Shape& shape);
Tensor mean(const Tensor& a);
Tensor norm(const Tensor& a);  // the 2-norm of all elements

// --- linear algebra ---
Tensor dot(const Tensor& a, const Tensor& b);

// --- shape and dtype ---
// Shares the buffer; one size may be -1 (inferred).
Tensor reshape(const Tensor& a, const std::vector<int64_t>& sizes);
// A copy of `a` broadcast to `shape` (not recorded).
Tensor expand_copy(const Tensor& a, const Shape& shape);
Tensor to_dtype(const Tensor& a, DType dtype);  // `a` itself when already `dtype`
Tensor clone(const Tensor& a);                 // a copy with its own buffer (not recorded)

// --- in-place (bump the version counter) ---
Tensor& zero_(Tensor& a);
Tensor& add_(Tensor& a, const Tensor& b);  // b broadcast to a's shape

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
