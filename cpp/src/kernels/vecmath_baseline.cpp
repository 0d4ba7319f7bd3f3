// The baseline variant of the kernels: 256-bit vectors, built with the core's flags (AVX2 and
// FMA on x86-64).
#define TG_VECTOR_BYTES 32
#include "vecmath_impl.h"

namespace tg::kernels {

const Table* baseline_table() {
#if defined(__AVX2__)
  static constexpr Table table = make_table("avx2");
#else
  static constexpr Table table = make_table("generic");
#endif
  return &table;
}

}  // namespace tg::kernels
