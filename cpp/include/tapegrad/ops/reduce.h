// Reductions (over every element, or over chosen dims with keepdim), the values and indices of
// maxima and minima, and softmax / log_softmax along a dim.
//
// `dims` lists the dims to reduce, negative ones counting from the end; an empty list reduces
// all of them. `keepdim` keeps each reduced dim with size 1. The overloads without dims reduce
// everything to a 0-d tensor and record the node torch records for that form (SumBackward0,
// not SumBackward1). Dims out of range raise IndexError, a repeated dim RuntimeError.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

// Integers and bools sum to int64 (not differentiable); an empty sum is 0.
Tensor sum(const Tensor& a);
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums `a` down to a shape that broadcasts to `shape` (dims of size 1 where `shape` has 1,
// leading dims `shape` lacks removed): the reverse of broadcasting. Not recorded.
Tensor sum_to_shape(const Tensor& a, const Shape& shape);

// Floating point only; the mean of nothing is nan.
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);

// The 2-norm.
Tensor norm(const Tensor& a);
Tensor norm(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);

// The sum of squared deviations from the mean over max(0, n - correction): correction 1 is
// the unbiased estimate, 0 the population variance. std is its square root (torch's at::std).
Tensor var(const Tensor& a, const std::vector<int64_t>& dims = {}, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& a, const std::vector<int64_t>& dims = {}, double correction = 1, bool keepdim = false);

// log(sum(exp(a))), computed after subtracting the maximum; integer inputs give float32.
Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);

// The product; integers and bools multiply in int64. The product of nothing is 1.
Tensor prod(const Tensor& a);
Tensor prod(const Tensor& a, int64_t dim, bool keepdim = false);

// The largest (smallest) element; nan wins. Over everything it needs a non-empty input and its
// gradient is shared evenly by the tied elements; along a dim the index is that of the first
// extreme element, which alone receives the gradient.
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64
};
Tensor max(const Tensor& a);
ValuesIndices max(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& a);
ValuesIndices min(const Tensor& a, int64_t dim, bool keepdim = false);
// The index of the first maximum (minimum), as int64; without a dim, into the flattened input.
Tensor argmax(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);

// exp(a) / sum(exp(a)) along `dim`, and its log, computed after subtracting the maximum so that
// large logits stay finite; `dtype` converts the input first, as torch's dtype= does.
Tensor softmax(const Tensor& a, int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& a, int64_t dim, std::optional<DType> dtype = std::nullopt);

}  // namespace tg
