// The one place that names BLAS functions. scipy-openblas32 (the Python build's BLAS)
// prefixes every symbol with scipy_; any other CBLAS uses the plain names.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>

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
  static constexpr auto ger = TG_CBLAS(sger);
};
template <>
struct Routines<double> {
  static constexpr auto gemm = TG_CBLAS(dgemm);
  static constexpr auto gemv = TG_CBLAS(dgemv);
  static constexpr auto ger = TG_CBLAS(dger);
};

// C (m x n) = op(A) (m x k) . op(B) (k x n), all row-major and contiguous, k >= 1; with
// `accumulate`, C += op(A) . op(B) instead. A product with a single row, column or inner
// dim goes to GEMV or GER: GEMM would pack whole operands for one pass over them (batch-1
// layers and their gradients).
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, const T* a, const T* b, T* c, bool accumulate = false) {
  using R = Routines<T>;
  if (m > 1 && n > 1 && k > 1) {
    R::gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1, a,
            trans_a ? m : k, b, trans_b ? k : n, accumulate ? 1 : 0, c, n);
    return;
  }
  // Zeroed here rather than by beta = 0, which some OpenBLAS versions apply to GEMV's y as
  // a multiplication (so a NaN left in a reused buffer would survive).
  if (!accumulate) std::fill(c, c + int64_t(m) * n, T(0));
  if (m == 1) {  // c = op(B)^T a; a is contiguous either way
    if (trans_b)
      R::gemv(CblasRowMajor, CblasNoTrans, n, k, 1, b, k, a, 1, 1, c, 1);
    else
      R::gemv(CblasRowMajor, CblasTrans, k, n, 1, b, n, a, 1, 1, c, 1);
  } else if (n == 1) {  // c = op(A) b; b is contiguous either way
    if (trans_a)
      R::gemv(CblasRowMajor, CblasTrans, k, m, 1, a, m, b, 1, 1, c, 1);
    else
      R::gemv(CblasRowMajor, CblasNoTrans, m, k, 1, a, k, b, 1, 1, c, 1);
  } else {  // k == 1: C = a b^T; a and b are contiguous either way
    R::ger(CblasRowMajor, m, n, 1, a, 1, b, 1, c, n);
  }
}

}  // namespace tg::blas
