// The kernels of vecmath.h, written once over GCC vector types of TG_VECTOR_BYTES bytes and
// compiled once per instruction set (vecmath_baseline.cpp, vecmath_avx512.cpp). Everything
// here has internal linkage and calls no library template: two variants compiled with
// different flags must never hand the linker two copies of one symbol to choose from.
//
// The methods are the classic ones (Cephes, fdlibm): a range reduction to a small interval,
// a polynomial there, and a reconstruction with exact scalings by powers of two. Special
// values are patched in with selects at the end, so nan, infinities, zeros and denormals
// follow <cmath> without branches.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TG_VECTOR_BYTES
#error "define TG_VECTOR_BYTES (the vector width in bytes) before including vecmath_impl.h"
#endif

#include "vecmath.h"

namespace tg::kernels {
namespace {

// The vector of T filling TG_VECTOR_BYTES, the signed integer vector of its bits, and the
// layout of T's bits.
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  typedef float V __attribute__((vector_size(TG_VECTOR_BYTES)));
  typedef int32_t I __attribute__((vector_size(TG_VECTOR_BYTES)));
  typedef uint32_t U __attribute__((vector_size(TG_VECTOR_BYTES)));  // wrapping arithmetic on bits
  static constexpr int kMantissaBits = 23;
  static constexpr int32_t kBias = 127;
};
template <>
struct Lanes<double> {
  typedef double V __attribute__((vector_size(TG_VECTOR_BYTES)));
  typedef int64_t I __attribute__((vector_size(TG_VECTOR_BYTES)));
  typedef uint64_t U __attribute__((vector_size(TG_VECTOR_BYTES)));  // wrapping arithmetic on bits
  static constexpr int kMantissaBits = 52;
  static constexpr int64_t kBias = 1023;
};
using F32 = Lanes<float>::V;
using F64 = Lanes<double>::V;
template <class T>
using Vec = typename Lanes<T>::V;
template <class T>
using Bits = typename Lanes<T>::I;
template <class T>
constexpr int kLanes = TG_VECTOR_BYTES / int(sizeof(T));

template <class T>
Vec<T> splat(T value) {
  return value - Vec<T>{};  // -0 - 0 is -0 (where -0 + 0 would be +0)
}

template <class T>
Vec<T> load(const T* p) {
  Vec<T> v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(T* p, Vec<T> v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// A store past the caches, to p aligned to the vector's size.
template <class T>
void stream(T* p, Vec<T> v) {
#if TG_VECTOR_BYTES == 64 && defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    _mm512_stream_ps(p, (__m512)v);
  else
    _mm512_stream_pd(p, (__m512d)v);
#elif TG_VECTOR_BYTES == 32 && defined(__AVX__)
  if constexpr (sizeof(T) == 4)
    _mm256_stream_ps(p, (__m256)v);
  else
    _mm256_stream_pd(p, (__m256d)v);
#else
  store(p, v);
#endif
}

// a * b + c, rounded once where the target has FMA.
inline F32 fma(F32 a, F32 b, F32 c) {
#if TG_VECTOR_BYTES == 64 && defined(__AVX512F__)
  return (F32)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif TG_VECTOR_BYTES == 32 && defined(__FMA__)
  return (F32)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}
inline F64 fma(F64 a, F64 b, F64 c) {
#if TG_VECTOR_BYTES == 64 && defined(__AVX512F__)
  return (F64)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif TG_VECTOR_BYTES == 32 && defined(__FMA__)
  return (F64)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
  return a * b + c;
#endif
}

// c[0] x^(N-1) + ... + c[N-1], by Horner's rule.
template <class T, int N>
Vec<T> polynomial(Vec<T> x, const T (&c)[N]) {
  Vec<T> p = splat(c[0]);
  for (int k = 1; k < N; ++k) p = fma(p, x, splat(c[k]));
  return p;
}

template <class T>
Vec<T> abs(Vec<T> x) {
  return (Vec<T>)((Bits<T>)x & ~(Bits<T>)splat(T(-0.0)));
}

// |magnitude| with the sign of `sign`.
template <class T>
Vec<T> copysign(Vec<T> magnitude, Vec<T> sign) {
  const Bits<T> sign_bit = (Bits<T>)splat(T(-0.0));
  return (Vec<T>)(((Bits<T>)magnitude & ~sign_bit) | ((Bits<T>)sign & sign_bit));
}

// x with the values above `high` replaced by `high`; nan stays nan (it compares false).
template <class T>
Vec<T> at_most(Vec<T> x, T high) {
  return x > high ? splat(high) : x;
}
template <class T>
Vec<T> at_least(Vec<T> x, T low) {
  return x < low ? splat(low) : x;
}

// 2^k for integer vectors k in T's normal exponent range.
template <class T>
Vec<T> power_of_two(Bits<T> k) {
  return (Vec<T>)((k + Lanes<T>::kBias) << Lanes<T>::kMantissaBits);
}

// Adding 1.5 * 2^mantissa_bits rounds a number of magnitude below 2^(mantissa_bits - 1) to an
// integer, which then sits in the low bits: the integer both as T and as bits.
template <class T>
constexpr T kRoundingShift = T(3) * T(1LL << (Lanes<T>::kMantissaBits - 1));

template <class T>
Vec<T> to_floating(Bits<T> k) {
  return (Vec<T>)(k + (Bits<T>)splat(kRoundingShift<T>)) - kRoundingShift<T>;
}

// --- exp ---

template <class T>
struct ExpConstants;
template <>
struct ExpConstants<float> {
  static constexpr float kLog2e = 0x1.715476p0f;
  static constexpr float kLn2High = 0.693359375f;  // 9 significant bits: n * kLn2High is exact
  static constexpr float kLn2Low = -2.12194440e-4f;
  // Beyond these, exp is inf (or 0 after rounding); clamping keeps 2^n in range.
  static constexpr float kHigh = 89.0f, kLow = -104.0f;
  // 1/k! for k = 7 down to 2: with |r| <= ln2/2 the next term is below 6e-9.
  static constexpr float kTaylor[] = {1 / 5040.0f, 1 / 720.0f, 1 / 120.0f, 1 / 24.0f, 1 / 6.0f, 1 / 2.0f};
  // 1/k! for k = 9 down to 2, for expm1, whose result can be as small as r.
  static constexpr float kTaylorExpm1[] = {1 / 362880.0f, 1 / 40320.0f, 1 / 5040.0f, 1 / 720.0f,
                                           1 / 120.0f,    1 / 24.0f,    1 / 6.0f,    1 / 2.0f};
};
template <>
struct ExpConstants<double> {
  static constexpr double kLog2e = 0x1.71547652b82fep0;
  static constexpr double kLn2High = 0x1.62e42feep-1;  // low 32 bits zero: n * kLn2High is exact
  static constexpr double kLn2Low = 0x1.a39ef35793c76p-33;
  static constexpr double kHigh = 710.0, kLow = -746.0;
  // 1/k! for k = 13 down to 2: the next term is below 4e-18.
  static constexpr double kTaylor[] = {1 / 6227020800.0, 1 / 479001600.0, 1 / 39916800.0, 1 / 3628800.0,
                                       1 / 362880.0,     1 / 40320.0,     1 / 5040.0,     1 / 720.0,
                                       1 / 120.0,        1 / 24.0,        1 / 6.0,        1 / 2.0};
  // 1/k! for k = 15 down to 2.
  static constexpr double kTaylorExpm1[] = {1 / 1307674368000.0, 1 / 87178291200.0, 1 / 6227020800.0, 1 / 479001600.0,
                                            1 / 39916800.0,      1 / 3628800.0,     1 / 362880.0,     1 / 40320.0,
                                            1 / 5040.0,          1 / 720.0,         1 / 120.0,        1 / 24.0,
                                            1 / 6.0,             1 / 2.0};
};

// x = n ln2 + r with n an integer and |r| <= ln2/2 (a little more after rounding).
template <class T>
struct Reduced {
  Vec<T> r;
  Bits<T> n;
};

template <class T>
Reduced<T> reduce_by_ln2(Vec<T> x) {
  using C = ExpConstants<T>;
  const Vec<T> shifted = fma(x, splat(C::kLog2e), splat(kRoundingShift<T>));
  const Vec<T> n = shifted - kRoundingShift<T>;
  Vec<T> r = fma(-n, splat(C::kLn2High), x);
  r = fma(-n, splat(C::kLn2Low), r);
  return {r, (Bits<T>)shifted - (Bits<T>)splat(kRoundingShift<T>)};
}

template <class T>
Vec<T> exp_vector(Vec<T> x) {
  using C = ExpConstants<T>;
  const Reduced<T> reduced = reduce_by_ln2<T>(at_least(at_most(x, C::kHigh), C::kLow));
  const Vec<T> r = reduced.r;
  const Vec<T> e_r = fma(polynomial<T>(r, C::kTaylor), r * r, r) + T(1);  // e^r
  // e^x = e^r 2^n, scaled in two steps: 2^n alone leaves T's range near the thresholds, and
  // a denormal result is rounded once, by the second product.
  const Bits<T> half = reduced.n >> 1;
  return e_r * power_of_two<T>(half) * power_of_two<T>(reduced.n - half);
}

// e^x - 1 for 0 <= x <= 44 (what tanh needs): 2^n (1 + expm1(r)) - 1 in one rounding.
template <class T>
Vec<T> expm1_nonnegative(Vec<T> x) {
  const Reduced<T> reduced = reduce_by_ln2<T>(x);
  const Vec<T> r = reduced.r;
  const Vec<T> expm1_r = fma(polynomial<T>(r, ExpConstants<T>::kTaylorExpm1), r * r, r);
  const Vec<T> scale = power_of_two<T>(reduced.n);
  return fma(scale, expm1_r, scale - T(1));
}

// --- log ---

template <class T>
struct LogConstants;
template <>
struct LogConstants<float> {
  static constexpr float kLn2High = 6.9313812256e-01f;  // 0x3f317180
  static constexpr float kLn2Low = 9.0580006145e-06f;   // 0x3717f7d1
  // The polynomial R(s^2) ~ log((1+s)/(1-s)) / s - 2 on |s| <= 0.1716 (fdlibm's logf),
  // split into its odd and even powers of w = s^4.
  static constexpr float kOdd[] = {0x91e9ee.0p-25f, 0xaaaaaa.0p-24f};
  static constexpr float kEven[] = {0xf89e26.0p-26f, 0xccce13.0p-25f};
  static constexpr int32_t kSqrtHalfBits = 0x3f3504f3;  // sqrt(2)/2
  static constexpr float kMinNormal = 0x1p-126f;
  static constexpr int kDenormalScale = 25;
};
template <>
struct LogConstants<double> {
  static constexpr double kLn2High = 6.93147180369123816490e-01;
  static constexpr double kLn2Low = 1.90821492927058770002e-10;
  static constexpr double kOdd[] = {1.479819860511658591e-01, 1.818357216161805012e-01, 2.857142874366239149e-01,
                                    6.666666666666735130e-01};
  static constexpr double kEven[] = {1.531383769920937332e-01, 2.222219843214978396e-01, 3.999999999940941908e-01};
  static constexpr int64_t kSqrtHalfBits = 0x3fe6a09e667f3bcd;
  static constexpr double kMinNormal = 0x1p-1022;
  static constexpr int kDenormalScale = 54;
};

template <class T>
Vec<T> log_vector(Vec<T> x) {
  using C = LogConstants<T>;
  using I = Bits<T>;
  constexpr int kMantissaBits = Lanes<T>::kMantissaBits;
  constexpr auto kMantissaMask = (decltype(C::kSqrtHalfBits)(1) << kMantissaBits) - 1;
  constexpr auto kOneBits = Lanes<T>::kBias << kMantissaBits;
  // Denormals are scaled into the normal range first.
  const I denormal = (x < C::kMinNormal) & (x > T(0));
  const Vec<T> normal = denormal ? x * T(1LL << C::kDenormalScale) : x;
  // x = 2^k m with m in [sqrt(2)/2, sqrt(2)): moving the mantissa's origin to sqrt(2)/2 makes
  // the exponent field k's.
  // Unsigned: NaN and infinity bits wrap here (their lanes are replaced at the end).
  using U = typename Lanes<T>::U;
  const I bits = (I)((U)normal + (U)(I{} + (kOneBits - C::kSqrtHalfBits)));
  const I k = (bits >> kMantissaBits) - Lanes<T>::kBias - (denormal & C::kDenormalScale);
  const Vec<T> m = (Vec<T>)((bits & kMantissaMask) + C::kSqrtHalfBits);
  // log(m) = log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with s = f / (2 + f) (fdlibm)
  const Vec<T> f = m - T(1);
  const Vec<T> s = f / (f + T(2));
  const Vec<T> z = s * s;
  const Vec<T> w = z * z;
  const Vec<T> tail = fma(z, polynomial<T>(w, C::kOdd), w * polynomial<T>(w, C::kEven));
  const Vec<T> half_f_squared = T(0.5) * f * f;
  const Vec<T> dk = to_floating<T>(k);
  Vec<T> y = fma(s, half_f_squared + tail, dk * C::kLn2Low) - half_f_squared + f;
  y = fma(dk, splat(C::kLn2High), y);
  constexpr T kInfinity = __builtin_inf();
  y = x == kInfinity ? splat(kInfinity) : y;
  y = x == T(0) ? splat(-kInfinity) : y;
  y = x < T(0) ? splat(T(__builtin_nan(""))) : y;
  return x != x ? x : y;
}

// --- tanh, sigmoid ---

template <class T>
Vec<T> tanh_vector(Vec<T> x) {
  // tanh |x| = expm1(2|x|) / (expm1(2|x|) + 2): no cancellation anywhere. Past 2|x| = 20
  // (float) or 44 (double) tanh rounds to 1, so the argument is clamped there (inf too).
  constexpr T kSaturation = sizeof(T) == 4 ? T(20) : T(44);
  const Vec<T> doubled = at_most(abs<T>(x) * T(2), kSaturation);
  const Vec<T> e = expm1_nonnegative<T>(doubled);
  return copysign<T>(e / (e + T(2)), x);
}

template <class T>
Vec<T> sigmoid_vector(Vec<T> x) {
  // With e = exp(-|x|) in (0, 1]: 1 / (1 + e) for x >= 0, e / (1 + e) below; nothing overflows.
  const Vec<T> e = exp_vector<T>(-abs<T>(x));
  return (x < T(0) ? e : splat(T(1))) / (e + T(1));
}

// --- the row loops ---

template <class T, Vec<T> (*F)(Vec<T>)>
void map_row(const T* x, T* y, int64_t n, bool streaming) {
  constexpr int L = kLanes<T>;
  int64_t i = 0;
  if (streaming && n >= L) {
    // One plain store covers the head up to the first aligned vector; then aligned streams,
    // fenced (see stream_row in ops/loops.h).
    store(y, F(load(x)));
    for (i = L - int64_t(reinterpret_cast<uintptr_t>(y) % sizeof(Vec<T>) / sizeof(T)); i + L <= n; i += L)
      stream(y + i, F(load(x + i)));
#if defined(__x86_64__)
    _mm_sfence();
#endif
  }
  for (; i + L <= n; i += L) store(y + i, F(load(x + i)));
  if (i == n) return;
  T padded[L] = {};  // the tail, through the same vector code
  for (int64_t k = 0; k < n - i; ++k) padded[k] = x[i + k];
  store(padded, F(load(padded)));
  for (int64_t k = 0; k < n - i; ++k) y[i + k] = padded[k];
}

// The widening of half a vector of T to a vector of double.
typedef float HalfF32 __attribute__((vector_size(TG_VECTOR_BYTES / 2)));

template <class T>
F64 load_as_double(const T* p) {
  if constexpr (sizeof(T) == 4) {
    HalfF32 half;
    __builtin_memcpy(&half, p, sizeof half);
    return __builtin_convertvector(half, F64);
  } else {
    return load(p);
  }
}

// One block of at most kSumBlock elements, in four vectors of double lanes. Lines are
// fetched 4 KiB ahead: one stream of reads alone leaves the memory bus idle between the
// misses (a 16 MiB float32 sum took 1.2x the time without, here).
template <class T>
double sum_block(const T* x, int64_t n) {
  constexpr int L = kLanes<double>;
  constexpr int64_t kAhead = 4096 / sizeof(T);
  F64 acc[4] = {};
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    __builtin_prefetch(x + i + kAhead);  // a prefetch past the end is harmless: it never faults
    for (int a = 0; a < 4; ++a) acc[a] += load_as_double(x + i + a * L);
  }
  for (; i + L <= n; i += L) acc[0] += load_as_double(x + i);
  const F64 pairs = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  double total = 0;
  for (int k = 0; k < L; ++k) total += pairs[k];
  for (; i < n; ++i) total += double(x[i]);
  return total;
}

// Blocks summed one by one, their sums added pairwise.
template <class T>
double sum_row(const T* x, int64_t n) {
  PairwiseSum blocks;
  for (int64_t start = 0; start < n; start += kSumBlock)
    blocks.add(sum_block(x + start, n - start < kSumBlock ? n - start : kSumBlock));
  return blocks.total();
}

constexpr Table make_table(const char* isa) {
  return Table{isa,
               map_row<float, exp_vector<float>>,
               map_row<double, exp_vector<double>>,
               map_row<float, log_vector<float>>,
               map_row<double, log_vector<double>>,
               map_row<float, tanh_vector<float>>,
               map_row<double, tanh_vector<double>>,
               map_row<float, sigmoid_vector<float>>,
               map_row<double, sigmoid_vector<double>>,
               sum_row<float>,
               sum_row<double>};
}

}  // namespace
}  // namespace tg::kernels
