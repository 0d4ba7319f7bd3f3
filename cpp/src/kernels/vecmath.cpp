// The choice of instruction set for the kernels, made once, and the entry points that use it.
//
// Each variant is the same source compiled with other flags (vecmath_impl.h); a table of
// function pointers picked at first use, rather than GCC's target_clones, lets
// TAPEGRAD_ISA force the baseline (so tests cover it on any machine) and needs no ifunc
// support from the C library.
#include "vecmath.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "tapegrad/error.h"
#include "tapegrad/parallel.h"

namespace tg::kernels {
namespace {

bool cpu_has_avx512() {
#if defined(__x86_64__)
  // libgcc's check includes the OS's saving of the 512-bit state (XCR0).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

const Table* choose() {
  const char* forced = std::getenv("TAPEGRAD_ISA");
  const Table* wide = avx512_table();
  if (forced == nullptr || *forced == '\0') return wide && cpu_has_avx512() ? wide : baseline_table();
  if (std::strcmp(forced, baseline_table()->isa) == 0) return baseline_table();
  TG_CHECK(std::strcmp(forced, "avx512") == 0, "TAPEGRAD_ISA=", forced, ": expected '", baseline_table()->isa,
           "' or 'avx512'");
  TG_CHECK(wide != nullptr, "TAPEGRAD_ISA=avx512: this build of tapegrad has no AVX-512 kernels");
  TG_CHECK(cpu_has_avx512(), "TAPEGRAD_ISA=avx512: this CPU lacks AVX-512F and AVX-512DQ");
  return wide;
}

const Table& chosen() {
  static const Table* const table = choose();
  return *table;
}

template <class T>
void map(Table::Row<T> row, const T* x, T* y, int64_t n) {
  const bool stream = x != y && streams(int64_t(sizeof(T)) * n);
  parallel_for(n, kParallelGrain, [&](int64_t begin, int64_t end) { row(x + begin, y + begin, end - begin, stream); });
}

// The chunks a long sum splits into: a power of two of blocks, so that each chunk's sum is
// a partial that PairwiseSum forms over the whole row, and adding the chunk sums by the same
// counter, after the sum of the rest, repeats the serial sum's additions exactly.
constexpr int64_t kSumChunk = kSumBlock << 4;
static_assert(kSumChunk >= kParallelGrain, "a chunk of a sum is a chunk of parallel work");

template <class T>
double sum(double (*row)(const T*, int64_t), const T* x, int64_t n) {
  const int64_t chunks = n / kSumChunk;
  if (chunks < 2) return row(x, n);
  std::vector<double> chunk_sums(chunks);
  parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) chunk_sums[c] = row(x + c * kSumChunk, kSumChunk);
  });
  PairwiseSum total;
  for (double chunk_sum : chunk_sums) total.add(chunk_sum);
  return total.total(row(x + chunks * kSumChunk, n - chunks * kSumChunk));
}

}  // namespace

void exp(const float* x, float* y, int64_t n) { map(chosen().exp_f32, x, y, n); }
void exp(const double* x, double* y, int64_t n) { map(chosen().exp_f64, x, y, n); }
void log(const float* x, float* y, int64_t n) { map(chosen().log_f32, x, y, n); }
void log(const double* x, double* y, int64_t n) { map(chosen().log_f64, x, y, n); }
void tanh(const float* x, float* y, int64_t n) { map(chosen().tanh_f32, x, y, n); }
void tanh(const double* x, double* y, int64_t n) { map(chosen().tanh_f64, x, y, n); }
void sigmoid(const float* x, float* y, int64_t n) { map(chosen().sigmoid_f32, x, y, n); }
void sigmoid(const double* x, double* y, int64_t n) { map(chosen().sigmoid_f64, x, y, n); }
double sum(const float* x, int64_t n) { return sum(chosen().sum_f32, x, n); }
double sum(const double* x, int64_t n) { return sum(chosen().sum_f64, x, n); }
const char* isa() { return chosen().isa; }

}  // namespace tg::kernels
