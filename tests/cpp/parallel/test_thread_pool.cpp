// The intra-op thread pool: parallel_for covers its range once, in chunks of at least the
// grain, on several threads; runs inline when small, nested, single-threaded or contended;
// passes a chunk's exception to the caller; and survives fork. OpenBLAS's jobs run on it
// all at once, one call at a time, and its threaded products stay right.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../testing.h"

namespace tg {
namespace {

// Sets the thread count for one test and restores it after.
class WithThreads {
 public:
  explicit WithThreads(int threads) : before_(get_num_threads()) { set_num_threads(threads); }
  ~WithThreads() { set_num_threads(before_); }

 private:
  int before_;
};

// The chunks one parallel_for ran, with the threads that ran them.
struct Chunks {
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::set<std::thread::id> threads;
  void add(int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mutex);
    ranges.emplace_back(begin, end);
    threads.insert(std::this_thread::get_id());
  }
};

// Each index of [0, n) is in exactly one range, and each range holds at least `grain`.
void expect_partition(std::vector<std::pair<int64_t, int64_t>> ranges, int64_t n, int64_t grain) {
  std::sort(ranges.begin(), ranges.end());
  int64_t next = 0;
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(begin, next);
    EXPECT_GE(end - begin, grain) << "chunk [" << begin << ", " << end << ")";
    next = end;
  }
  EXPECT_EQ(next, n);
}

TEST(ThreadPool, SetNumThreadsRoundTripsAndRejectsNonPositiveCounts) {
  WithThreads restore(get_num_threads());
  set_num_threads(3);
  EXPECT_EQ(get_num_threads(), 3);
  for (const int bad : {0, -1}) {
    try {
      set_num_threads(bad);
      ADD_FAILURE() << "set_num_threads(" << bad << ") did not throw";
    } catch (const RuntimeError& error) {
      EXPECT_STREQ(error.what(), (std::string("set_num_threads expects a positive integer, got ") + std::to_string(bad)).c_str());
    }
  }
  EXPECT_EQ(get_num_threads(), 3);
}

TEST(ThreadPool, SetNumThreadsLowersAHugeCountToTheMaximum) {
  WithThreads restore(get_num_threads());
  EXPECT_GE(max_num_threads(), 1);
  set_num_threads(int64_t(1) << 40);
  EXPECT_EQ(get_num_threads(), max_num_threads());
}

TEST(ThreadPool, CoversTheRangeOnceInChunksOfAtLeastTheGrain) {
  for (const int threads : {2, 3, 4}) {
    WithThreads with(threads);
    for (const int64_t n : {int64_t(20), int64_t(1001), int64_t(1) << 20}) {
      const int64_t grain = 10;
      Chunks chunks;
      std::vector<std::atomic<int>> visits(n);
      parallel_for(n, grain, [&](int64_t begin, int64_t end) {
        chunks.add(begin, end);
        for (int64_t i = begin; i < end; ++i) visits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[i].load(), 1) << "index " << i << " of " << n;
      EXPECT_GE(chunks.ranges.size(), 2u);
      expect_partition(chunks.ranges, n, grain);
    }
  }
}

TEST(ThreadPool, RunsInlineBelowTwoGrainsAndWithOneThread) {
  {
    WithThreads with(4);
    Chunks chunks;
    parallel_for(199, 100, [&](int64_t begin, int64_t end) { chunks.add(begin, end); });
    EXPECT_EQ(chunks.ranges, (std::vector<std::pair<int64_t, int64_t>>{{0, 199}}));
    EXPECT_EQ(chunks.threads, std::set<std::thread::id>{std::this_thread::get_id()});
    int calls = 0;
    parallel_for(0, 1, [&](int64_t, int64_t) { ++calls; });
    EXPECT_EQ(calls, 0);
  }
  WithThreads with(1);
  Chunks chunks;
  parallel_for(1 << 20, 10, [&](int64_t begin, int64_t end) { chunks.add(begin, end); });
  EXPECT_EQ(chunks.ranges, (std::vector<std::pair<int64_t, int64_t>>{{0, 1 << 20}}));
}

TEST(ThreadPool, RunsChunksOnTheWorkersToo) {
  WithThreads with(2);
  // Every chunk waits until two threads have started chunks, so the caller alone can never
  // finish: a worker must take part. The deadline turns a broken pool into a failure, not a hang.
  std::atomic<int> started{0};
  std::atomic<bool> timed_out{false};
  Chunks chunks;
  parallel_for(4, 1, [&](int64_t begin, int64_t end) {
    chunks.add(begin, end);
    started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (started.load() < 2)
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
  });
  EXPECT_FALSE(timed_out) << "no worker joined the caller within 30 s";
  EXPECT_EQ(chunks.threads.size(), 2u);
  expect_partition(chunks.ranges, 4, 1);
}

TEST(ThreadPool, NestedParallelForRunsInline) {
  WithThreads with(2);
  std::atomic<int64_t> total{0};
  std::atomic<int> inner_calls{0};
  parallel_for(64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      parallel_for(1000, 1, [&](int64_t inner_begin, int64_t inner_end) {
        inner_calls.fetch_add(1);
        EXPECT_EQ(inner_begin, 0);
        EXPECT_EQ(inner_end, 1000);
        total.fetch_add(inner_end - inner_begin);
      });
  });
  EXPECT_EQ(inner_calls.load(), 64);
  EXPECT_EQ(total.load(), 64 * 1000);
}

TEST(ThreadPool, AChunksExceptionReachesTheCallerAndThePoolStaysUsable) {
  WithThreads with(2);
  EXPECT_THROW(parallel_for(1000, 10,
                            [&](int64_t begin, int64_t end) {
                              if (begin <= 500 && 500 < end) throw std::out_of_range("chunk holding 500");
                            }),
               std::out_of_range);
  std::atomic<int64_t> total{0};
  parallel_for(1000, 10, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
  EXPECT_EQ(total.load(), 1000);
}

TEST(ThreadPool, ConcurrentCallersEachGetTheirWholeRange) {
  WithThreads with(2);
  constexpr int kCallers = 4, kRounds = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        const int64_t n = 1000 + c * 37 + round;
        std::vector<std::atomic<int>> visits(n);
        parallel_for(n, 16, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) visits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          if (visits[i].load() != 1) ++wrong;
      }
    });
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(wrong.load(), 0);
}

// OpenBLAS's jobs for run_blas_jobs: each counts its runs and then, as the threads of a
// level-3 product do, spins until every job of its call has started. The deadline turns a
// job that never runs beside the others into a failure, not a hang.
struct BlasJobs {
  static constexpr int kMaxJobs = 8;
  std::atomic<int> started{0};
  std::atomic<int> runs[kMaxJobs] = {};
  std::atomic<bool> timed_out{false};
  int jobs = 0;

  struct Record {  // job i's element of the array OpenBLAS passes
    BlasJobs* jobs;
    int index;
  };

  static void run(int index, void* job, int dojob_data) {
    const Record& record = *static_cast<const Record*>(job);
    BlasJobs& self = *record.jobs;
    EXPECT_EQ(record.index, index) << "job " << index << " got another job's record";
    EXPECT_EQ(dojob_data, 7);
    self.runs[index].fetch_add(1);
    self.started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (self.started.load() < self.jobs)
      if (std::chrono::steady_clock::now() > deadline) {
        self.timed_out = true;
        return;
      }
  }

  // Calls run_blas_jobs as OpenBLAS does: an array of job records, passed with its element size.
  void call(int count) {
    jobs = count;
    started = 0;
    for (auto& r : runs) r = 0;
    std::vector<Record> records;
    for (int i = 0; i < count; ++i) records.push_back({this, i});
    detail::run_blas_jobs(1, &BlasJobs::run, count, sizeof(Record), records.data(), 7);
    EXPECT_FALSE(timed_out) << count << " jobs did not all run at once";
    for (int i = 0; i < kMaxJobs; ++i) EXPECT_EQ(runs[i].load(), i < count ? 1 : 0) << "job " << i << " of " << count;
  }
};

TEST(ThreadPool, BlasJobsRunOnceEachAndAllAtOnce) {
  // Up to the thread count on the pool, more on threads of their own.
  for (const int threads : {1, 2, 4}) {
    WithThreads with(threads);
    BlasJobs jobs;
    for (int count = 1; count <= BlasJobs::kMaxJobs; ++count) jobs.call(count);
  }
}

TEST(ThreadPool, BlasJobsRunAtOnceFromInsideAParallelFor) {
  WithThreads with(2);
  std::atomic<int> calls{0};
  parallel_for(4, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      BlasJobs jobs;
      jobs.call(2);
      calls.fetch_add(1);
    }
  });
  EXPECT_EQ(calls.load(), 4);
}

// OpenBLAS gives job i of any call the same scratch buffer, so jobs with one index must
// never run at once: each marks its index busy while it runs.
TEST(ThreadPool, ConcurrentBlasCallsNeverRunOneJobIndexTwiceAtOnce) {
  WithThreads with(2);
  static std::atomic<int> busy[2];
  static std::atomic<int> overlaps{0};
  const auto dojob = [](int index, void*, int) {
    if (busy[index].fetch_add(1) != 0) overlaps.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    busy[index].fetch_sub(1);
  };
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      char records[2];
      for (int round = 0; round < 100; ++round) detail::run_blas_jobs(1, dojob, 2, 1, records, 0);
    });
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(overlaps.load(), 0);
}

// A product large enough that OpenBLAS splits it across threads, against a sum in double.
void expect_threaded_product_right() {
  constexpr int64_t n = 300;
  const std::vector<double> a = testing::draw(n * n, testing::Domain::Real, 11), b = testing::draw(n * n, testing::Domain::Real, 12);
  const std::vector<double> product = testing::values(matmul(testing::tensor(a, Shape{n, n}), testing::tensor(b, Shape{n, n})));
  for (int64_t i = 0; i < n; i += 7)
    for (int64_t j = 0; j < n; j += 5) {
      double expected = 0;
      for (int64_t k = 0; k < n; ++k) expected += double(float(a[i * n + k])) * double(float(b[k * n + j]));
      EXPECT_NEAR(product[i * n + j], expected, 1e-4 * n) << "at (" << i << ", " << j << ")";
    }
}

#ifdef TAPEGRAD_OPENBLAS_THREADS_CALLBACK
// OpenBLAS runs its jobs on tapegrad's pool: a threaded product waits while another
// thread's parallel_for has the pool.
TEST(ThreadPool, ThreadedBlasProductsRunOnThePool) {
  WithThreads with(2);
  std::atomic<bool> pool_taken{false}, product_done{false}, done_while_taken{false};
  std::thread holder([&] {
    parallel_for(2, 1, [&](int64_t, int64_t) {
      pool_taken = true;
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
      while (std::chrono::steady_clock::now() < until)
        if (product_done) done_while_taken = true;
    });
  });
  while (!pool_taken) std::this_thread::yield();
  expect_threaded_product_right();
  product_done = true;
  holder.join();
  EXPECT_FALSE(done_while_taken) << "the product ran on OpenBLAS's own threads";
}
#endif

TEST(ThreadPool, ThreadedBlasProductsAreRight) {
  for (const int threads : {2, 3}) {
    WithThreads with(threads);
    expect_threaded_product_right();
  }
}

TEST(ThreadPool, ChangingTheThreadCountRebuildsThePool) {
  for (const int threads : {2, 4, 3, 2}) {
    WithThreads with(threads);
    Chunks chunks;
    parallel_for(1 << 16, 8, [&](int64_t begin, int64_t end) { chunks.add(begin, end); });
    expect_partition(chunks.ranges, 1 << 16, 8);
    EXPECT_LE(chunks.threads.size(), size_t(threads));
  }
}

TEST(ThreadPool, AForkedChildRunsParallelForWithoutDeadlock) {
  WithThreads with(2);
  std::atomic<int64_t> total{0};
  parallel_for(1000, 10, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });  // workers exist now
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(30);  // a deadlock kills the child, and the parent sees the signal
    std::atomic<int64_t> child_total{0};
    parallel_for(1 << 20, 10, [&](int64_t begin, int64_t end) { child_total.fetch_add(end - begin); });
    expect_threaded_product_right();  // OpenBLAS's jobs on the child's new pool
    _exit(child_total.load() == (1 << 20) && !::testing::Test::HasFailure() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Elementwise kernels split across the pool give bitwise the single-thread results, with
// broadcasting along each dim, including the row and the outer dims the split runs along.
TEST(ThreadPool, ParallelElementwiseOpsEqualTheSingleThreadResultsBitwise) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {Shape{1 << 18}, Shape{1 << 18}},        // one merged row
      {Shape{513, 301}, Shape{301}},           // broadcast rows: the outer dim splits
      {Shape{3, 70001}, Shape{3, 1}},          // a short outer dim: the row splits
      {Shape{7, 1, 20000}, Shape{1, 5, 20000}},
  };
  for (const auto& [a_shape, b_shape] : shapes) {
    const Tensor a = testing::tensor(testing::draw(a_shape.numel(), testing::Domain::Real, 1, DType::Float32), a_shape);
    const Tensor b = testing::tensor(testing::draw(b_shape.numel(), testing::Domain::Positive, 2, DType::Float32), b_shape);
    std::vector<std::vector<double>> results[2];
    for (const int threads : {1, 2}) {
      WithThreads with(threads);
      for (const Tensor& result : {add(a, b), div(exp(a), b), tanh(mul(a, b))})
        results[threads - 1].push_back(testing::values(result));
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t op = 0; op < results[0].size(); ++op)
      EXPECT_TRUE(results[0][op] == results[1][op]) << "op " << op << " on " << a_shape.str() << " and " << b_shape.str();
    // And the values are right: a + b against index arithmetic.
    const std::vector<double> av = testing::values(a), bv = testing::values(b);
    const Shape out = broadcast_shapes(a_shape, b_shape, "add");
    for (int64_t i = 0; i < out.numel(); i += 997)
      EXPECT_EQ(results[1][0][i], double(float(av[testing::broadcast_offset(out, a_shape, i)]) +
                                         float(bv[testing::broadcast_offset(out, b_shape, i)])));
  }
}

// Reductions along dims split across the pool along an outer kept dim and give bitwise the
// single-thread results: rows along the reduced dim, rows across it, and both at once.
TEST(ThreadPool, ParallelReductionsAlongDimsEqualTheSingleThreadResultsBitwise) {
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {Shape{513, 301}, 1},      // rows along the dim: the outer kept dim splits
      {Shape{64, 90, 40}, 1},    // rows across the dim, under an outer kept dim
      {Shape{3, 40000}, 1},      // an outer kept dim shorter than the pool's chunks
      {Shape{700, 400}, 0},      // no outer kept dim: one thread
      {Shape{90, 64, 40}, 0},    // the same, with the outer dim long enough to split
  };
  for (const auto& [shape, dim] : cases) {
    // float64: its sums round, so a sum taken in another order shows
    const Tensor a = testing::tensor(testing::draw(shape.numel(), testing::Domain::Real, 3), shape, DType::Float64);
    std::vector<std::vector<double>> results[2];
    for (const int threads : {1, 2}) {
      WithThreads with(threads);
      const ValuesIndices largest = max(a, dim);
      for (const Tensor& result : {sum(a, {dim}), largest.values, largest.indices, argmin(a, dim), var(a, {dim}),
                                   logsumexp(a, {dim}), softmax(a, dim), log_softmax(a, dim)})
        results[threads - 1].push_back(testing::values(result));
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t op = 0; op < results[0].size(); ++op)
      EXPECT_TRUE(results[0][op] == results[1][op]) << "op " << op << " along dim " << dim << " of " << shape.str();
    // And the values are right: the sum of the first slice along the dim, against a loop.
    const std::vector<double> av = testing::values(a);
    int64_t inner = 1;
    for (int d = int(dim) + 1; d < shape.ndim(); ++d) inner *= shape[d];
    double first_sum = 0;
    for (int64_t k = 0; k < shape[int(dim)]; ++k) first_sum += av[k * inner];
    EXPECT_NEAR(results[1][0][0], first_sum, 1e-12 * shape[int(dim)]) << shape.str();
  }
}

}  // namespace
}  // namespace tg
