// Row kernels over contiguous buffers: the transcendental functions of the elementwise ops
// (exp, log, tanh, sigmoid) and the summation of the reductions, vectorised. The
// instruction set (AVX2 + FMA baseline, or AVX-512) is chosen once, at first use.
#pragma once

#include <cstdint>

namespace tg::kernels {

// Writes of at least this many bytes at once go past the caches (non-temporal stores): for an
// output larger than the caches that saves reading each line before writing it; for a smaller
// one it loses, as the next op would have found the output in cache. The step of
// bench/compare.py's elementwise workload against a build that never streams, one thread,
// medians of 5 runs (2026-11-30): 0.81x the time at 4M float32 elements, 0.90x at 1M, 1.42x
// at 256K (a 1 MiB threshold there).
constexpr int64_t kStreamingBytes = int64_t(1) << 22;
inline bool streams(int64_t bytes) { return bytes >= kStreamingBytes; }

// y[i] = f(x[i]) for i < n; y may equal x. A long range splits across the thread pool, and
// a large y other than x is streamed past the caches. Accuracy (test_vecmath.cpp checks it
// against long double over dense ranges): at most 2 ulp for exp and log, 3 ulp for tanh and
// sigmoid, in both float32 and float64, denormal inputs and results included. The special
// values are those of <cmath>: exp(-inf) = 0, exp(+inf) = inf, log(0) = -inf, log(x < 0) =
// nan, tanh(+-inf) = +-1, sigmoid(-inf) = 0, and nan stays nan.
void exp(const float* x, float* y, int64_t n);
void exp(const double* x, double* y, int64_t n);
void log(const float* x, float* y, int64_t n);
void log(const double* x, double* y, int64_t n);
void tanh(const float* x, float* y, int64_t n);
void tanh(const double* x, double* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void sigmoid(const double* x, double* y, int64_t n);

// The sum of x[0..n), accumulated in double: blocks of kSumBlock elements are summed in 32
// independent lanes, and the block sums are added pairwise (PairwiseSum). The error is at
// most (kSumBlock / 32 + log2(n / kSumBlock) + 1) * 2^-53 * sum |x[i]|. A long x splits
// across the thread pool, and the result is bitwise the same at any thread count.
constexpr int64_t kSumBlock = 2048;
double sum(const float* x, int64_t n);
double sum(const double* x, int64_t n);

namespace {  // a copy per kernel file: none compiled with AVX-512 may be shared with another

// Values added pairwise, as a binary counter: after the k-th value there is one partial sum
// per set bit of k, the sum of 2^bit consecutive values, and each carry adds two partials.
class PairwiseSum {
 public:
  void add(double value) {
    partial_[depth_++] = value;
    for (int64_t added = ++count_; (added & 1) == 0; added >>= 1, --depth_) partial_[depth_ - 2] += partial_[depth_ - 1];
  }
  // start + the partials, smallest first.
  double total(double start = 0) const {
    double sum = start;
    for (int d = depth_; d > 0;) sum += partial_[--d];
    return sum;
  }

 private:
  double partial_[64];
  int depth_ = 0;
  int64_t count_ = 0;
};

}  // namespace

// The instruction set the kernels run with: "avx512" or "avx2" on x86-64 ("generic"
// elsewhere). TAPEGRAD_ISA=avx2 in the environment forces the baseline; otherwise AVX-512 is
// taken when the CPU and the OS support it.
const char* isa();

// The table each instruction-set variant fills in (internal to the kernels).
// Its row functions write y with non-temporal stores when `stream` is set.
struct Table {
  template <class T>
  using Row = void (*)(const T* x, T* y, int64_t n, bool stream);
  const char* isa;
  Row<float> exp_f32;
  Row<double> exp_f64;
  Row<float> log_f32;
  Row<double> log_f64;
  Row<float> tanh_f32;
  Row<double> tanh_f64;
  Row<float> sigmoid_f32;
  Row<double> sigmoid_f64;
  double (*sum_f32)(const float*, int64_t);
  double (*sum_f64)(const double*, int64_t);
};

// The variants; avx512_table() is null when the build has no AVX-512 variant.
const Table* baseline_table();
const Table* avx512_table();

}  // namespace tg::kernels
