// The vectorised kernels against long double <cmath>, in ulps over dense ranges and at the
// special values, for every instruction-set variant this machine can run.
#include "kernels/vecmath.h"
#include "tapegrad/parallel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace tg::kernels {
namespace {

bool runnable(const Table* table) {
  if (table == nullptr) return false;
  if (std::strcmp(table->isa, "avx512") != 0) return true;
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

// The variants under test: "baseline" always, "avx512" where the CPU has it.
class Variant : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    table_ = std::strcmp(GetParam(), "baseline") == 0 ? baseline_table() : avx512_table();
    if (!runnable(table_)) GTEST_SKIP() << GetParam() << " kernels are not built or this CPU cannot run them";
  }
  const Table* table_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Kernels, Variant, ::testing::Values("baseline", "avx512"));

template <class T>
using Kernel = Table::Row<T>;
using Reference = long double (*)(long double);

long double reference_sigmoid(long double x) { return 1 / (1 + std::exp(-x)); }
long double reference_exp(long double x) { return std::exp(x); }
long double reference_log(long double x) { return std::log(x); }
long double reference_tanh(long double x) { return std::tanh(x); }

// The distance from `value` to `exact` in units of T's spacing at `exact` (denormal spacing
// below the normal range); 0 when both are the same infinity or both nan.
template <class T>
double ulps(T value, long double exact) {
  using Limits = std::numeric_limits<T>;
  if (std::isnan(exact)) return std::isnan(value) ? 0 : Limits::infinity();
  if (std::fabs(exact) > (long double)Limits::max()) {  // past the largest T: must round to it or to inf
    const T rounded = static_cast<T>(exact);
    return value == rounded || (std::isinf(rounded) && std::fabs(value) == Limits::max()) ? 0 : Limits::infinity();
  }
  if (std::isinf(value)) return Limits::infinity();
  int exponent = 0;
  std::frexp(exact, &exponent);  // |exact| in [2^(exponent-1), 2^exponent)
  const long double spacing = std::max(std::ldexp(1.0L, exponent - Limits::digits), (long double)Limits::denorm_min());
  return double(std::fabs((long double)value - exact) / spacing);
}

struct Worst {
  double ulps = 0;
  long double input = 0;
};

// The largest error of `kernel` over `inputs`, run as one row (so the vector body and the tail both run).
template <class T>
Worst worst_error(Kernel<T> kernel, Reference reference, const std::vector<T>& inputs) {
  std::vector<T> outputs(inputs.size());
  kernel(inputs.data(), outputs.data(), int64_t(inputs.size()), false);
  Worst worst;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double error = ulps<T>(outputs[i], reference((long double)inputs[i]));
    if (!(error <= worst.ulps)) worst = {error, (long double)inputs[i]};
  }
  return worst;
}

// Every `stride`-th float bit pattern from `first` to `last` (both finite, same sign), plus
// both ends: dense in every binade, denormals included.
std::vector<float> float_sweep(float first, float last, uint32_t stride) {
  uint32_t a, b;
  std::memcpy(&a, &first, 4);
  std::memcpy(&b, &last, 4);
  if (a > b) std::swap(a, b);
  std::vector<float> out;
  for (uint64_t bits = a; bits <= b; bits += stride) {
    float value;
    const uint32_t pattern = uint32_t(bits);
    std::memcpy(&value, &pattern, 4);
    out.push_back(value);
  }
  out.push_back(first);
  out.push_back(last);
  return out;
}

// `count` doubles uniformly spread over each binade between |low| and |high| (log-uniform
// magnitudes with a uniform mantissa), with the sign of low.
std::vector<double> double_sweep(double low, double high, int count) {
  std::mt19937_64 random(7);
  const double sign = low < 0 ? -1 : 1;
  const double log_low = std::log2(std::fabs(low)), log_high = std::log2(std::fabs(high));
  std::uniform_real_distribution<double> exponent(std::min(log_low, log_high), std::max(log_low, log_high));
  std::vector<double> out{low, high};
  for (int i = 0; i < count; ++i) out.push_back(sign * std::exp2(exponent(random)));
  return out;
}

struct Case {
  const char* name;
  Kernel<float> f32;
  Kernel<double> f64;
  Reference reference;
  double bound;  // in ulps
  // Domains: for each, the float sweep and the double sweep cover it.
  std::vector<std::pair<double, double>> domains;
};

std::vector<Case> cases(const Table& t) {
  constexpr double kDenormal = 1e-320, kFloatDenormal = 1e-45;
  return {
      {"exp", t.exp_f32, t.exp_f64, reference_exp, 2,
       {{kFloatDenormal, 1}, {1, 720}, {-kFloatDenormal, -1}, {-1, -760}}},
      {"log", t.log_f32, t.log_f64, reference_log, 2, {{kDenormal, 1}, {1, 1e308}}},
      {"tanh", t.tanh_f32, t.tanh_f64, reference_tanh, 3, {{kDenormal, 1}, {1, 30}, {-kDenormal, -1}, {-1, -30}}},
      {"sigmoid", t.sigmoid_f32, t.sigmoid_f64, reference_sigmoid, 3,
       {{kDenormal, 1}, {1, 800}, {-kDenormal, -1}, {-1, -800}}},
  };
}

TEST_P(Variant, Float32WithinBoundOverDenseSweeps) {
  for (const Case& c : cases(*table_))
    for (auto [low, high] : c.domains) {
      const float first = float(low) == 0 ? std::copysign(std::numeric_limits<float>::denorm_min(), float(low)) : float(low);
      const float last = std::isinf(float(high)) ? std::copysign(std::numeric_limits<float>::max(), float(high)) : float(high);
      const Worst worst = worst_error<float>(c.f32, c.reference, float_sweep(first, last, 4099));
      EXPECT_LE(worst.ulps, c.bound) << c.name << "(float32) at " << double(worst.input) << " over [" << low << ", "
                                     << high << "]";
    }
}

TEST_P(Variant, Float64WithinBoundOverDenseSweeps) {
  for (const Case& c : cases(*table_))
    for (auto [low, high] : c.domains) {
      const Worst worst = worst_error<double>(c.f64, c.reference, double_sweep(low, high, 100000));
      EXPECT_LE(worst.ulps, c.bound) << c.name << "(float64) at " << double(worst.input) << " over [" << low << ", "
                                     << high << "]";
    }
}

// The special values of <cmath>, and the thresholds where results overflow or underflow.
template <class T>
void check_special_values(const Table& table, Kernel<T> exp_kernel, Kernel<T> log_kernel, Kernel<T> tanh_kernel,
                          Kernel<T> sigmoid_kernel) {
  using Limits = std::numeric_limits<T>;
  const T inf = Limits::infinity(), nan = Limits::quiet_NaN();
  const std::vector<T> inputs = {T(0), T(-0.0), inf, -inf, nan, -nan, Limits::denorm_min(), -Limits::denorm_min(),
                                 Limits::min(), Limits::max(), -Limits::max(), T(1), T(-1),
                                 // exp's overflow and underflow thresholds, and just past them
                                 std::log(Limits::max()), std::nextafter(std::log(Limits::max()), inf),
                                 std::log(Limits::denorm_min()), std::log(Limits::denorm_min()) - 1,
                                 std::log(Limits::min())};
  std::vector<T> out(inputs.size());
  struct Function {
    const char* name;
    Kernel<T> kernel;
    Reference reference;
  };
  for (const Function& function : {Function{"exp", exp_kernel, reference_exp}, Function{"log", log_kernel, reference_log},
                                   Function{"tanh", tanh_kernel, reference_tanh},
                                   Function{"sigmoid", sigmoid_kernel, reference_sigmoid}}) {
    const auto& [name, kernel, reference] = function;
    kernel(inputs.data(), out.data(), int64_t(inputs.size()), false);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const long double exact = reference((long double)inputs[i]);
      EXPECT_LE(ulps<T>(out[i], exact), 3) << name << "(" << inputs[i] << ") = " << out[i] << ", expected "
                                           << double(exact) << " (" << table.isa << ")";
      if (exact == 0 || std::isinf(exact))  // zeros and infinities keep their sign
        EXPECT_EQ(std::signbit(out[i]), std::signbit(exact)) << name << "(" << inputs[i] << ") = " << out[i];
    }
  }
  const T at_zero[] = {T(-0.0)};  // tanh is odd: tanh(-0) = -0
  T result[1];
  tanh_kernel(at_zero, result, 1, false);
  EXPECT_TRUE(result[0] == 0 && std::signbit(result[0])) << "tanh(-0) = " << result[0];
}

TEST_P(Variant, SpecialValuesAsCmath) {
  check_special_values<float>(*table_, table_->exp_f32, table_->log_f32, table_->tanh_f32, table_->sigmoid_f32);
  check_special_values<double>(*table_, table_->exp_f64, table_->log_f64, table_->tanh_f64, table_->sigmoid_f64);
}

// Every row length up to a few vectors, and outputs written in place: the tail runs through
// the same code as the body and writes nothing past n.
TEST_P(Variant, EveryLengthAndInPlace) {
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> x(size_t(n) + 1), y(size_t(n) + 1, -7.0f);
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i) / 8 - 2;
    table_->tanh_f32(x.data(), y.data(), n, false);
    for (int64_t i = 0; i < n; ++i) EXPECT_LE(ulps<float>(y[size_t(i)], std::tanh((long double)x[size_t(i)])), 3);
    EXPECT_EQ(y[size_t(n)], -7.0f) << "wrote past the end of a row of " << n;
    std::vector<float> in_place = x;
    table_->exp_f32(in_place.data(), in_place.data(), n, false);
    for (int64_t i = 0; i < n; ++i) EXPECT_LE(ulps<float>(in_place[size_t(i)], std::exp((long double)x[size_t(i)])), 2);
  }
}

// Streamed rows (non-temporal stores) hold exactly what cached ones do, at every alignment
// of the output and every length up to a few vectors, and write nothing outside the row.
template <class T>
void check_streamed_as_cached(Kernel<T> kernel) {
  for (int64_t offset = 0; offset < 16; ++offset)
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<T> x(static_cast<size_t>(n)), cached(static_cast<size_t>(n)), streamed(static_cast<size_t>(n + 32), T(-7));
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] = T(i) / 8 - 2;
      kernel(x.data(), cached.data(), n, false);
      kernel(x.data(), streamed.data() + offset, n, true);
      for (int64_t i = 0; i < n + 32; ++i) {
        const bool inside = i >= offset && i < offset + n;
        EXPECT_EQ(streamed[size_t(i)], inside ? cached[size_t(i - offset)] : T(-7))
            << "n = " << n << ", offset = " << offset << ", at " << i;
      }
    }
}

TEST_P(Variant, StreamedRowsAsCached) {
  check_streamed_as_cached<float>(table_->tanh_f32);
  check_streamed_as_cached<double>(table_->exp_f64);
}

// The sum against a long double sum, within the bound vecmath.h states, for lengths around
// the block size and for 10^7 elements.
template <class T>
void check_sum(double (*sum_kernel)(const T*, int64_t), int64_t n) {
  std::mt19937 random(11);
  std::normal_distribution<double> normal(1.0, 3.0);
  std::vector<T> x(static_cast<size_t>(n));
  long double exact = 0, magnitude = 0;
  for (T& v : x) {
    v = T(normal(random));
    exact += v;
    magnitude += std::fabs((long double)v);
  }
  const double bound = (double(kSumBlock) / 16 + std::log2(double(n) / kSumBlock + 1) + 1) * 0x1p-53 * double(magnitude);
  EXPECT_LE(std::fabs((long double)sum_kernel(x.data(), n) - exact), bound) << "n = " << n;
}

TEST_P(Variant, SumWithinStatedBound) {
  for (const int64_t n : {int64_t(0), int64_t(1), int64_t(15), int64_t(33), kSumBlock - 1, kSumBlock, kSumBlock + 1,
                          7 * kSumBlock + 5, int64_t(10'000'000)}) {
    check_sum<float>(table_->sum_f32, n);
    check_sum<double>(table_->sum_f64, n);
  }
}

// A long sum splits across the pool in chunks; its result must be the serial row's, bitwise,
// at any thread count and for any remainder after the last whole chunk.
TEST(Sum, SplitAcrossThreadsAsSerial) {
  const Table* chosen = std::strcmp(isa(), baseline_table()->isa) == 0 ? baseline_table() : avx512_table();
  std::mt19937 random(5);
  std::normal_distribution<double> normal(0.5, 4.0);
  std::vector<float> x(10'000'000);
  for (float& v : x) v = float(normal(random));
  const int threads = get_num_threads();
  for (const int n : {1 << 16, (1 << 16) + 1, (3 << 15) + 7, (5 << 17) - 3, 10'000'000}) {
    const double serial = chosen->sum_f32(x.data(), n);
    for (const int t : {1, 2, 3}) {
      set_num_threads(t);
      EXPECT_EQ(sum(x.data(), n), serial) << "n = " << n << ", " << t << " threads";
    }
  }
  set_num_threads(threads);
}

TEST(KernelDispatch, ChoosesABuiltVariant) {
  const std::string chosen = isa();
  EXPECT_TRUE(chosen == baseline_table()->isa || (avx512_table() && chosen == avx512_table()->isa)) << chosen;
  const char* forced = std::getenv("TAPEGRAD_ISA");
  if (forced && *forced) EXPECT_EQ(chosen, forced);
}

}  // namespace
}  // namespace tg::kernels
