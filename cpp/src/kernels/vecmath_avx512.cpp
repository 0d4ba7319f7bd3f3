// The AVX-512 variant of the kernels: 512-bit vectors. CMake compiles this file alone with
// -mavx512f -mavx512dq; vecmath.cpp runs it only on a CPU that has both.
#include "vecmath.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define TG_VECTOR_BYTES 64
#include "vecmath_impl.h"

namespace tg::kernels {
const Table* avx512_table() {
  static constexpr Table table = make_table("avx512");
  return &table;
}
}  // namespace tg::kernels

#else

namespace tg::kernels {
const Table* avx512_table() { return nullptr; }
}  // namespace tg::kernels

#endif
