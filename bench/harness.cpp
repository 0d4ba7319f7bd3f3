// The C++ benchmark harness: the core driven without Python, on the workloads PyTorch is
// compared on, so that per-op costs of the tape, the kernels and the binding can be told apart.
//
//   tapegrad_bench                              full run
//   tapegrad_bench --benchmark_min_time=0.01s   short run (CI); the "s" suffix is accepted
//                                               by every Google Benchmark version
//
// Counters: `per_op` is time per recorded op (chains), `bytes_per_second` counts each input
// float once per iteration ("effective" bandwidth, as in the PyTorch comparison).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "tapegrad/tapegrad.h"

namespace {

constexpr int kChainOps = 200;  // alternating `* w` and `+ 0.5`
constexpr int64_t kChainElements = 16;
constexpr int64_t kLargeElements = 1 << 20;

// Reports the time of one op: `ops` per iteration, inverted to seconds per op.
void report_per_op(benchmark::State& state, double ops) {
  state.counters["per_op"] =
      benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The seed workload: y = 2 * dot(x, x), backward, zero x.grad, x.sum().backward().
void BM_Seed(benchmark::State& state) {
  tg::Tensor x = tg::from_values<float>({1, 2, 3, 4}, tg::Shape{4}, tg::DType::Float32);
  x.requires_grad_();
  for (auto _ : state) {
    const tg::Tensor y = 2.0 * tg::dot(x, x);
    y.backward();
    tg::Tensor grad = x.grad();
    tg::zero_(grad);
    tg::sum(x).backward();
  }
  benchmark::DoNotOptimize(x.grad().raw_data());
}
BENCHMARK(BM_Seed);

// 200 ops on 16 floats: y = y * w (w a constant weight) and y = y + 0.5 in turn, from a leaf x.
tg::Tensor chain(const tg::Tensor& x, const tg::Tensor& w) {
  tg::Tensor y = x;
  for (int i = 0; i < kChainOps / 2; ++i) y = y * w + 0.5;
  return y;
}

struct ChainInputs {
  tg::Tensor x = tg::full(tg::Shape{kChainElements}, 1.0);
  tg::Tensor w = tg::full(tg::Shape{kChainElements}, 0.9);  // |w| < 1 keeps the values bounded
  tg::Tensor grad_output = tg::ones(tg::Shape{kChainElements});
  ChainInputs() { x.requires_grad_(); }
};

// Forward and backward (from a gradient of ones, so no extra op is recorded).
void BM_Chain_ForwardBackward(benchmark::State& state) {
  ChainInputs in;
  for (auto _ : state) chain(in.x, in.w).backward(in.grad_output);
  report_per_op(state, kChainOps);
}
BENCHMARK(BM_Chain_ForwardBackward);

// Forward only, grad mode on: every op records its node (and the graph is released).
void BM_Chain_Forward(benchmark::State& state) {
  ChainInputs in;
  for (auto _ : state) benchmark::DoNotOptimize(chain(in.x, in.w).raw_data());
  report_per_op(state, kChainOps);
}
BENCHMARK(BM_Chain_Forward);

// Forward only with the tape off: the kernels and allocations alone. Subtracted from
// BM_Chain_Forward it gives the cost of recording one op.
void BM_Chain_ForwardNoGrad(benchmark::State& state) {
  ChainInputs in;
  tg::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(chain(in.x, in.w).raw_data());
  report_per_op(state, kChainOps);
}
BENCHMARK(BM_Chain_ForwardNoGrad);

// ((x*w + b) * (x*w + b)).sum() on 1M float32, forward and backward into x, w and b.
void BM_Elementwise_1M_ForwardBackward(benchmark::State& state) {
  tg::manual_seed(0);
  tg::Tensor x = tg::randn(tg::Shape{kLargeElements});
  tg::Tensor w = tg::randn(tg::Shape{kLargeElements});
  tg::Tensor b = tg::randn(tg::Shape{kLargeElements});
  for (tg::Tensor* leaf : {&x, &w, &b}) leaf->requires_grad_();
  const auto step = [&] {
    const tg::Tensor h = x * w + b;
    tg::sum(h * h).backward();
  };
  step();  // fills the buffer pool, so a short run does not time first-touch page faults
  for (auto _ : state) step();
  state.SetBytesProcessed(state.iterations() * kLargeElements * int64_t(sizeof(float)));
}
BENCHMARK(BM_Elementwise_1M_ForwardBackward)->Unit(benchmark::kMicrosecond);

// dot of two 1M float32 vectors, forward only (no grad).
void BM_Dot_1M(benchmark::State& state) {
  tg::manual_seed(0);
  const tg::Tensor a = tg::randn(tg::Shape{kLargeElements});
  const tg::Tensor b = tg::randn(tg::Shape{kLargeElements});
  for (auto _ : state) benchmark::DoNotOptimize(tg::dot(a, b).raw_data());
  state.SetBytesProcessed(state.iterations() * 2 * kLargeElements * int64_t(sizeof(float)));
}
BENCHMARK(BM_Dot_1M)->Unit(benchmark::kMicrosecond);

// Google Benchmark before 1.8 reads --benchmark_min_time as a bare number of seconds and
// rejects "0.01s"; 1.8 and later take the suffixed form and still accept a bare number. So
// "<seconds>s" is rewritten to "<seconds>" here, and one command line works on both.
std::vector<std::string> portable_arguments(int argc, char** argv) {
  static const std::string kMinTime = "--benchmark_min_time=";
  std::vector<std::string> arguments(argv, argv + argc);
  for (std::string& argument : arguments)
    if (argument.compare(0, kMinTime.size(), kMinTime) == 0 && argument.size() > kMinTime.size() &&
        argument.back() == 's')
      argument.pop_back();
  return arguments;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> arguments = portable_arguments(argc, argv);
  std::vector<char*> pointers;
  for (std::string& argument : arguments) pointers.push_back(argument.data());
  int count = static_cast<int>(pointers.size());
  benchmark::Initialize(&count, pointers.data());
  if (benchmark::ReportUnrecognizedArguments(count, pointers.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
