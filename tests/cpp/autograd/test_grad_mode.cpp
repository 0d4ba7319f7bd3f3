// Grad mode: NoGradGuard records nothing, guards nest and restore, and the mode is per
// thread, so threads building their own graphs concurrently get single-thread results.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../testing.h"

namespace tg {
namespace {

using testing::leaf;
using testing::values;

TEST(GradMode, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1, 2}, Shape{2});
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(is_grad_enabled());
    const Tensor y = x * x + 1.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_TRUE(y.is_leaf());
    EXPECT_EQ(values(y), (std::vector<double>{2, 5}));  // the value is still computed
    EXPECT_EQ(x.impl()->grad_accumulator.lock(), nullptr);  // nothing points at x
  }
  EXPECT_TRUE(is_grad_enabled());
  EXPECT_TRUE((x * x).requires_grad());
}

TEST(GradMode, GuardsNestAndRestoreThePreviousMode) {
  {
    NoGradGuard no_grad;
    {
      GradModeGuard enabled(true);
      EXPECT_TRUE(is_grad_enabled());
      EXPECT_TRUE((leaf({1}, Shape{1}) * 2.0).requires_grad());
    }
    EXPECT_FALSE(is_grad_enabled());
  }
  EXPECT_TRUE(is_grad_enabled());
}

TEST(GradMode, BackwardWorksUnderNoGradAndRecordsNothingNew) {
  Tensor x = leaf({1, 2}, Shape{2});
  const Tensor y = sum(x * x);
  NoGradGuard no_grad;
  y.backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 4}));
  EXPECT_FALSE(x.grad().requires_grad());
}

TEST(GradMode, IsPerThreadAndOnByDefault) {
  NoGradGuard no_grad;  // on this thread only
  bool enabled_there = false, recorded_there = false;
  std::thread other([&] {
    enabled_there = is_grad_enabled();
    recorded_there = (leaf({1}, Shape{1}) * 2.0).requires_grad();
  });
  other.join();
  EXPECT_TRUE(enabled_there);
  EXPECT_TRUE(recorded_there);
  EXPECT_FALSE(is_grad_enabled());
}

// A small training-like graph: fan-out, broadcasting, every binary op, a reduction, a dot.
// Returns the loss followed by the gradients of both leaves.
std::vector<double> graph_and_gradients(uint64_t seed) {
  Tensor x = leaf(testing::draw(12, testing::Domain::Positive, seed), Shape{3, 4}, DType::Float64);
  Tensor w = leaf(testing::draw(4, testing::Domain::Nonzero, seed + 1000), Shape{4}, DType::Float64);
  Tensor h = x * w + 0.5;
  h = h * h / (x + 1.0) - pow(x, w);
  const Tensor flat = reshape(h, {-1});
  const Tensor loss = sum(h) + dot(flat, flat) * 0.25 + mean(x * w) + norm(h);
  loss.backward();
  std::vector<double> result{loss.item()};
  for (const Tensor& grad : {x.grad(), w.grad()})
    for (double value : values(grad)) result.push_back(value);
  return result;
}

TEST(GradMode, ThreadsBuildingTheirOwnGraphsGetSingleThreadResults) {
  constexpr int kThreads = 4, kRounds = 200;
  std::vector<std::vector<double>> expected;
  for (int t = 0; t < kThreads; ++t) expected.push_back(graph_and_gradients(t));

  std::atomic<bool> go{false};
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();  // start together, to overlap
      for (int round = 0; round < kRounds; ++round) {
        // Odd threads flip their own grad mode in between: it must not leak to the others.
        if (t % 2 == 1) {
          NoGradGuard no_grad;
          if ((leaf({1}, Shape{1}) * 2.0).requires_grad()) ++mismatches[t];
        }
        if (graph_and_gradients(t) != expected[t]) ++mismatches[t];  // bit for bit
      }
    });
  go = true;
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(GradMode, ThreadsSharingALeafAccumulateEveryContribution) {
  // Graphs built on several threads may share a leaf: the engine runs one backward pass at
  // a time for that, while recording runs in parallel. Graphs dropped unused let the leaf's
  // AccumulateGrad expire, to be made again by the next op on some thread. The leaf's .grad
  // must end up with every contribution; integer values in float64 keep the sums exact in
  // any order. A race here shows as a crash in some runs only; under -fsanitize=thread in
  // every run.
  constexpr int kThreads = 4, kRounds = 5'000, kDroppedPerRound = 50, kGraphsPerRound = 4;
  Tensor w = leaf({1, 2, 3}, Shape{3}, DType::Float64);
  std::atomic<bool> go{false};
  std::vector<int> unrecorded(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const Tensor x = testing::tensor({double(t), 1, -double(t)}, Shape{3}, DType::Float64);
      while (!go.load()) std::this_thread::yield();
      for (int round = 0; round < kRounds; ++round) {
        for (int g = 0; g < kDroppedPerRound; ++g)
          if (!(x * w).requires_grad()) ++unrecorded[t];
        std::vector<Tensor> losses;
        for (int g = 0; g < kGraphsPerRound; ++g) losses.push_back(sum(x * w));  // d/dw = x
        for (const Tensor& loss : losses) loss.backward();
      }
    });
  go = true;
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(unrecorded[t], 0) << "thread " << t;
  // The sum over threads of (t, 1, -t), once per graph each thread backpropagated.
  const double graphs = kRounds * kGraphsPerRound, sum_t = kThreads * (kThreads - 1) / 2;
  EXPECT_EQ(values(w.grad()), (std::vector<double>{sum_t * graphs, kThreads * graphs, -sum_t * graphs}));
}

TEST(GradMode, ThreadsChangingHooksAndGradsWhileABackwardRuns) {
  // What user code may change while a pass runs on another thread (hook lists, .grad,
  // retained gradients) is read and written under one lock: a race here shows as a crash in
  // some runs only, under -fsanitize=thread in every run. The changes are hooks that change
  // nothing and .grad reset to zeros, so the last pass's gradient is known.
  constexpr int kPasses = 200, kMaxChanges = 2'000;
  Tensor x = leaf({1, 2, 3}, Shape{3}, DType::Float64);
  std::atomic<bool> stop{false};
  std::thread meddler([&] {
    for (int round = 0; round < kMaxChanges && !stop.load(); ++round) {
      x.register_hook([](const Tensor&) { return Tensor(); });
      Tensor scaled = x * 1.0;
      scaled.retain_grad();
      scaled.register_hook([](const Tensor&) { return Tensor(); });
      x.set_grad(round % 2 ? Tensor() : zeros(Shape{3}, DType::Float64));
      (void)x.grad();
    }
  });
  for (int pass = 0; pass < kPasses; ++pass) sum(exp(x * 2.0)).backward();
  stop = true;
  meddler.join();
  x.set_grad(Tensor());
  sum(x * 2.0).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 2}));
}

}  // namespace
}  // namespace tg
