// Tensor factories: filled, ranges, random, from host values, wrapped numbers.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
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

// A Python-style number as an operand of `like`: a float keeps a floating tensor's dtype
// (and makes an int64 one float32), an integer keeps the tensor's dtype.
Tensor wrap_scalar(double value, bool is_integral, const Tensor& like);

}  // namespace tg
