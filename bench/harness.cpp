// The C++ benchmark harness: the core driven without Python, on the workloads PyTorch is
// compared on, so that per-op costs of the tape, the kernels and the binding can be told apart.
//
//   tapegrad_bench                              full run
//   tapegrad_bench --benchmark_min_time=0.01s   short run (CI); the "s" suffix is accepted
//                                               by every Google Benchmark version
//
// Counters: `per_op` is time per recorded op (chains), `bytes_per_second` counts each input
// float once per iteration ("effective" bandwidth, as in the PyTorch comparison), FLOPS the
// GEMMs' floating-point operations, and the MLP step's `heap_allocs` / `buffers_from_os`
// the C++ heap allocations (operator new: nodes, tensor handles) and buffers the pool had
// to take from the system, per step, in steady state.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
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

// (A @ B).sum() for n x n float32, forward and backward into A and B: three GEMMs.
void BM_Matmul_ForwardBackward(benchmark::State& state) {
  const int64_t n = state.range(0);
  tg::manual_seed(0);
  tg::Tensor a = tg::randn(tg::Shape{n, n});
  tg::Tensor b = tg::randn(tg::Shape{n, n});
  a.requires_grad_();
  b.requires_grad_();
  for (auto _ : state) tg::sum(tg::matmul(a, b)).backward();
  state.counters["FLOPS"] = benchmark::Counter(3 * 2.0 * double(n) * double(n) * double(n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Matmul_ForwardBackward)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);

// Every C++ heap allocation of the process, counted so the MLP step can report its own.
std::atomic<uint64_t> heap_allocations{0};

// One SGD step of the MLP 784-256-256-10 (relu, cross-entropy), as the PyTorch comparison
// runs it: forward, backward, then under no_grad p -= lr * p.grad and p.grad.zero_().
void BM_MLP_Step(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const int64_t sizes[] = {784, 256, 256, 10};
  tg::manual_seed(0);
  std::vector<tg::Tensor> params;
  for (int layer = 0; layer < 3; ++layer) {
    params.push_back(tg::randn(tg::Shape{sizes[layer], sizes[layer + 1]}) * std::sqrt(2.0 / double(sizes[layer])));
    params.push_back(tg::zeros(tg::Shape{sizes[layer + 1]}));
  }
  for (tg::Tensor& p : params) p.requires_grad_();
  const tg::Tensor x = tg::randn(tg::Shape{batch, sizes[0]});
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) labels[size_t(i)] = i % sizes[3];
  const tg::Tensor y = tg::from_values(labels, tg::Shape{batch}, tg::DType::Int64);
  const auto step = [&] {
    tg::Tensor h = x;
    for (int layer = 0; layer < 3; ++layer) {
      h = tg::matmul(h, params[size_t(2 * layer)]) + params[size_t(2 * layer + 1)];
      if (layer < 2) h = tg::relu(h);
    }
    tg::cross_entropy(h, y).backward();
    tg::NoGradGuard no_grad;
    for (tg::Tensor& p : params) {
      tg::Tensor grad = p.grad();
      tg::sub_(p, grad * 0.01);
      tg::zero_(grad);
    }
  };
  step();  // creates the .grad buffers and fills the pool
  const uint64_t heap_before = heap_allocations.load();
  const uint64_t os_before = tg::pool_stats().os_allocations;
  for (auto _ : state) step();
  const double steps = double(state.iterations());
  state.counters["heap_allocs"] = double(heap_allocations.load() - heap_before) / steps;
  state.counters["buffers_from_os"] = double(tg::pool_stats().os_allocations - os_before) / steps;
}
BENCHMARK(BM_MLP_Step)->Arg(64)->Arg(1)->Unit(benchmark::kMicrosecond);

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

// Counting replacements of the global allocation functions (the sized, array and nothrow
// forms all end in these two by default).
void* operator new(std::size_t size) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* block = std::malloc(size == 0 ? 1 : size)) return block;
  throw std::bad_alloc();
}
void operator delete(void* block) noexcept { std::free(block); }

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
