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

// The threads the matrix products use (OpenBLAS's pool; by default all cores, or
// OMP_NUM_THREADS / OPENBLAS_NUM_THREADS). Elementwise kernels run on the calling thread.
void set_num_threads(int threads);
int get_num_threads();

}  // namespace tg
