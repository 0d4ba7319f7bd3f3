// Tensor factories: filled, ranges, random, from host values, wrapped numbers.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
// full for an integer value, exact in int64 (a double is exact only up to 2^53).
Tensor full_integer(const Shape& shape, int64_t value, DType dtype);
Tensor scalar_tensor(double value, DType dtype);
// start, start + step, ... up to (excluding) end.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::Float32);
// Random tensors from the global generator (manual_seed): standard normal, uniform on
// [0, 1), normal(mean, std), and integers uniform on [low, high).
Tensor randn(const Shape& shape, DType dtype = DType::Float32);
Tensor rand(const Shape& shape, DType dtype = DType::Float32);
Tensor normal(double mean, double std, const Shape& shape, DType dtype = DType::Float32);
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int64);
void manual_seed(uint64_t seed);
// Copies `data` (numel values of `shape`) converted to `dtype`.
template <class T>
Tensor from_values(const std::vector<T>& data, const Shape& shape, DType dtype);

// A Python number as an operand of `like`, a 0-d tensor of the dtype the op's result takes
// from it (torch's "wrapped number", which changes a result's dtype only by category): a
// float keeps a floating tensor's dtype and makes an int64 or bool one float32; an integer
// keeps the tensor's dtype (int64 for a bool tensor), converted from int64 directly, so an
// int64 tensor meets it exactly. A Python bool is a bool tensor (scalar_tensor), which every
// dtype takes in as it is, and which sub refuses, as torch's does.
Tensor wrap_scalar(double value, const Tensor& like);
Tensor wrap_scalar(int64_t value, const Tensor& like);

}  // namespace tg
