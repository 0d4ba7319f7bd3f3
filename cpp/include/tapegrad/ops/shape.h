// Shape and dtype changes.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/tensor.h"

namespace tg {

// Shares the buffer; one size may be -1 (inferred).
Tensor reshape(const Tensor& a, const std::vector<int64_t>& sizes);
// A copy of `a` broadcast to `shape` (not recorded).
Tensor expand_copy(const Tensor& a, const Shape& shape);
Tensor to_dtype(const Tensor& a, DType dtype);  // `a` itself when already `dtype`
Tensor clone(const Tensor& a);                 // a copy with its own buffer (not recorded)

}  // namespace tg
