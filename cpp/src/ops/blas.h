// The one place that names BLAS functions. scipy-openblas32 (the Python build's BLAS)
// prefixes every symbol with scipy_; any other CBLAS uses the plain names.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "loops.h"
#include "parallel/fork.h"

#ifdef TAPEGRAD_BLAS_SCIPY_PREFIX
#define TG_CBLAS(name) scipy_cblas_##name
#define TG_OPENBLAS(name) scipy_openblas_##name
#else
#define TG_CBLAS(name) cblas_##name
#define TG_OPENBLAS(name) openblas_##name
#endif

namespace tg::blas {

// The CBLAS routines of one element type.
template <class T>
struct Routines;
template <>
struct Routines<float> {
  static constexpr auto gemm = TG_CBLAS(sgemm);
  static constexpr auto gemv = TG_CBLAS(sgemv);
};
template <>
struct Routines<double> {
  static constexpr auto gemm = TG_CBLAS(dgemm);
  static constexpr auto gemv = TG_CBLAS(dgemv);
};

// C (m x n) = op(A) (m x k) . op(B) (k x n), all row-major and contiguous, m, n, k >= 1; with
// `accumulate`, C += op(A) . op(B) instead. A product with a single row or column goes to
// GEMV: GEMM would pack whole operands for one pass over them (batch-1 layers and their
// gradients). One with a single inner dim is a column times a row, an elementwise product
// that our loops run: OpenBLAS's GER splits across its threads from 8192 elements, which on
// a shared 2-core machine made a 784 x 256 product take 94 us against 42 us on one thread.
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, const T* a, const T* b, T* c, bool accumulate = false) {
  using R = Routines<T>;
  if (m > 1 && n > 1 && k > 1) {
    const BlasCallInProgress blas_call;
    R::gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1, a,
            trans_a ? m : k, b, trans_b ? k : n, accumulate ? 1 : 0, c, n);
    return;
  }
  if (k == 1 && m > 1 && n > 1) {  // C = a b^T; a and b are contiguous either way
    const Shape shape{m, n}, column{m, 1}, row{n};
    const loops::Input<T> column_input{a, column}, row_input{b, row};
    if (accumulate)
      loops::update(c, shape, [](T sum, T x, T y) { return sum + x * y; }, column_input, row_input);
    else
      loops::map(c, shape, [](T x, T y) { return x * y; }, column_input, row_input);
    return;
  }
  // Zeroed here rather than by beta = 0, which some OpenBLAS versions apply to GEMV's y as
  // a multiplication (so a NaN left in a reused buffer would survive).
  if (!accumulate) std::fill(c, c + int64_t(m) * n, T(0));
  const BlasCallInProgress blas_call;
  if (m == 1) {  // c = op(B)^T a; a is contiguous either way
    if (trans_b)
      R::gemv(CblasRowMajor, CblasNoTrans, n, k, 1, b, k, a, 1, 1, c, 1);
    else
      R::gemv(CblasRowMajor, CblasTrans, k, n, 1, b, n, a, 1, 1, c, 1);
  } else {  // n == 1: c = op(A) b; b is contiguous either way
    if (trans_a)
      R::gemv(CblasRowMajor, CblasTrans, k, m, 1, a, m, b, 1, 1, c, 1);
    else
      R::gemv(CblasRowMajor, CblasNoTrans, m, k, 1, a, k, b, 1, 1, c, 1);
  }
}

}  // namespace tg::blas
