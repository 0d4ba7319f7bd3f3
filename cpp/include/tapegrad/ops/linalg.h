// Linear algebra.
#pragma once

#include "tapegrad/tensor.h"

namespace tg {

Tensor dot(const Tensor& a, const Tensor& b);  // 1-D . 1-D
// numpy's matmul: 1-D operands act as a row (left) or column (right) that is dropped
// again; batch dims broadcast. float32 and float64, through BLAS.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);     // 2-D only
Tensor outer(const Tensor& a, const Tensor& b);  // 1-D x 1-D -> 2-D

}  // namespace tg
