// The one place that names BLAS functions. scipy-openblas32 (the Python build's BLAS)
// prefixes every symbol with scipy_; any other CBLAS uses the plain names.
#pragma once

#include <cblas.h>

#ifdef TAPEGRAD_BLAS_SCIPY_PREFIX
#define TG_CBLAS(name) scipy_cblas_##name
#define TG_OPENBLAS(name) scipy_openblas_##name
#else
#define TG_CBLAS(name) cblas_##name
#define TG_OPENBLAS(name) openblas_##name
#endif

namespace tg::blas {

// C (m x n) = op(A) (m x k) . op(B) (k x n), all row-major and contiguous.
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, const float* b, float* c) {
  TG_CBLAS(sgemm)(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                  1.0f, a, trans_a ? m : k, b, trans_b ? k : n, 0.0f, c, n);
}
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, const double* a, const double* b, double* c) {
  TG_CBLAS(dgemm)(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                  1.0, a, trans_a ? m : k, b, trans_b ? k : n, 0.0, c, n);
}

}  // namespace tg::blas
