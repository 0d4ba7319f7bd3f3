// The intra-op thread pool behind parallel_for, and the thread count it shares with OpenBLAS,
// whose parallel work runs on the pool too.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ops/blas.h"
#include "tapegrad/error.h"
#include "tapegrad/parallel.h"

namespace tg {
namespace {

// True on the pool's workers always, and on a caller while it runs chunks: a parallel_for
// from there runs inline, so parallelism never nests.
thread_local bool inside_parallel_region = false;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// How long a worker spins for the next job before it sleeps (pauses of ~30-70 cycles):
// consecutive ops then start without a wake-up, yet an idle pool costs no CPU.
constexpr int kWorkerSpins = 4000;
// Chunks per thread: dynamic claiming then evens out a worker that was descheduled.
constexpr int64_t kChunksPerThread = 4;

// Persistent workers that run the chunks of one job at a time together with its caller.
//
// A job is published as one 64-bit word, `claim_`: generation (32 bits), number of chunks
// (16) and next unclaimed chunk (16). Workers and the caller claim chunks by compare-and-swap
// on it, so a chunk runs exactly once and a worker that wakes late (its generation gone) claims
// nothing. The caller claims chunks too and waits until `done_` counts them all, so the job
// finishes even if no worker ever wakes (the case in a forked child, whose workers do not exist).
class ThreadPool {
 public:
  explicit ThreadPool(int threads) : threads_(threads) {
    workers_.reserve(threads - 1);
    try {
      for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    } catch (const std::system_error& error) {
      // The system has no more threads to give: the caller and the workers that started take
      // all the chunks (a job never waits for a worker to wake).
      shortfall_ = error.what();
    }
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  int threads() const { return threads_; }
  int workers() const { return int(workers_.size()); }
  // Why fewer than threads() - 1 workers started; empty if all did.
  const std::string& shortfall() const { return shortfall_; }

  // Runs call(fn, begin, end) over `chunks` even chunks of [0, n); one caller at a time.
  // With chunks <= workers() + 1, chunks that wait for each other all run: a thread claims
  // another chunk only after finishing one, so while one is unclaimed a thread is free.
  void run(int64_t n, int64_t chunks, detail::ChunkFunction call, const void* fn) {
    n_ = n;
    call_ = call;
    fn_ = fn;
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const uint32_t generation = ++generation_;
    claim_.store(pack(generation, chunks, 0));  // seq_cst, paired with sleepers_ (see work())
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    inside_parallel_region = true;
    run_chunks(generation);
    inside_parallel_region = false;
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < 1000)
        cpu_relax();
      else
        std::this_thread::yield();  // a worker holding a chunk was descheduled
    }
    if (failed_.load(std::memory_order_relaxed)) std::rethrow_exception(error_);
  }

 private:
  static uint64_t pack(uint32_t generation, int64_t chunks, int64_t next) {
    return uint64_t(generation) << 32 | uint64_t(chunks) << 16 | uint64_t(next);
  }
  static uint32_t generation_of(uint64_t claim) { return uint32_t(claim >> 32); }

  // Claims and runs chunks of job `generation` until none is left.
  void run_chunks(uint32_t generation) {
    uint64_t claim = claim_.load(std::memory_order_acquire);
    for (;;) {
      const int64_t chunks = int64_t(claim >> 16 & 0xffff), next = int64_t(claim & 0xffff);
      if (generation_of(claim) != generation || next >= chunks) return;
      if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      // The job stays alive until this chunk counts as done: its caller waits for that.
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          call_(fn_, n_ * next / chunks, n_ * (next + 1) / chunks);
        } catch (...) {
          if (!failed_.exchange(true)) error_ = std::current_exception();
        }
      }
      done_.fetch_add(1, std::memory_order_release);
      claim = claim_.load(std::memory_order_acquire);
    }
  }

  void work() {
    inside_parallel_region = true;
    uint32_t seen = 0;  // the pool's first generation: a job published before this thread ran is still new to it
    for (;;) {
      uint32_t now = generation_of(claim_.load(std::memory_order_acquire));
      for (int spins = 0; now == seen && spins < kWorkerSpins; ++spins) {
        cpu_relax();
        now = generation_of(claim_.load(std::memory_order_acquire));
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        // Registered before the generation is read again: a caller publishing a job either
        // sees this sleeper and notifies, or published before that read.
        ++sleepers_;
        wake_.wait(lock, [&] { return stop_ || generation_of(claim_.load()) != seen; });
        --sleepers_;
        if (stop_) return;
        now = generation_of(claim_.load(std::memory_order_acquire));
      }
      seen = now;
      run_chunks(now);
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::string shortfall_;
  std::mutex mutex_;  // guards stop_ and the sleep on wake_
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<int> sleepers_{0};
  std::atomic<uint64_t> claim_{0};
  uint32_t generation_ = 0;  // the caller's copy; only a caller (holding the pool) writes claim_'s
  // The job: written by its caller before claim_ publishes it, read after a chunk is claimed.
  int64_t n_ = 0;
  detail::ChunkFunction call_ = nullptr;
  const void* fn_ = nullptr;
  std::atomic<int64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;  // the first chunk's exception, written by whoever set failed_
};

// The cores in this process's affinity mask.
int available_cores() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

// OMP_NUM_THREADS when it holds a positive count (its first entry, as OpenMP reads a list),
// else the available cores; at most max_num_threads().
int default_threads() {
  if (const char* value = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    const long threads = std::strtol(value, &end, 10);
    if (end != value && threads >= 1 && (*end == '\0' || *end == ','))
      return int(std::min<long>(threads, max_num_threads()));
  }
  return std::min(available_cores(), max_num_threads());
}

// The process's pool and the lock that makes one caller at a time its owner. Heap-allocated
// and never freed: workers may still sleep in it at exit, and a forked child replaces it
// (the parent's workers do not exist there and its mutexes may be held by vanished threads).
struct PoolState {
  std::mutex owner;  // held by the one caller running a job, or by the rebuild of the pool
  std::unique_ptr<ThreadPool> pool;
};

std::atomic<int>& requested_threads() {
  static std::atomic<int> threads{default_threads()};
  return threads;
}

std::atomic<PoolState*> pool_state{nullptr};

PoolState& state() {
  PoolState* current = pool_state.load(std::memory_order_acquire);
  if (current) return *current;
  static std::once_flag at_fork;
  std::call_once(at_fork, [] {
    // The child starts without a pool: the next parallel_for there builds one.
    pthread_atfork(nullptr, nullptr, [] { pool_state.store(nullptr, std::memory_order_relaxed); });
  });
  auto fresh = std::make_unique<PoolState>();
  if (pool_state.compare_exchange_strong(current, fresh.get())) return *fresh.release();
  return *current;  // another thread installed one first
}

// The pool of `threads` threads, built anew when the count changed; the caller holds the
// owner lock.
ThreadPool& pool_of(PoolState& state, int threads) {
  if (!state.pool || state.pool->threads() != threads) {
    state.pool.reset();  // joins the old workers first
    state.pool = std::make_unique<ThreadPool>(threads);
  }
  return *state.pool;
}

}  // namespace

int max_num_threads() {
  // OpenBLAS keeps per-thread state for at most MAX_THREADS threads, fixed when it was built
  // (64 in scipy-openblas32's), and says so in its configuration string.
  static const int threads = [] {
    const char* config = TG_OPENBLAS(get_config)();
    const char* field = std::strstr(config, "MAX_THREADS=");
    const long max = field ? std::strtol(field + std::strlen("MAX_THREADS="), nullptr, 10) : 0;
    return max >= 1 ? int(max) : available_cores();
  }();
  return threads;
}

void set_num_threads(int64_t threads) {
  TG_CHECK(threads >= 1, "set_num_threads expects a positive integer, got ", threads);
  const int count = int(std::min<int64_t>(threads, max_num_threads()));
  {
    // Built here, so that a system out of threads fails this call rather than slowing later ops.
    PoolState& pool = state();
    std::lock_guard<std::mutex> owner(pool.owner);
    if (!pool.pool || pool.pool->threads() != count) {
      pool.pool.reset();  // joins the old workers first
      auto fresh = std::make_unique<ThreadPool>(count);
      TG_CHECK(fresh->shortfall().empty(), "set_num_threads: could not start ", count, " threads (", fresh->workers() + 1,
               " did: ", fresh->shortfall(), "); the thread count stays ", get_num_threads());
      pool.pool = std::move(fresh);
    }
  }
  requested_threads().store(count);
  TG_OPENBLAS(set_num_threads)(count);
}

int get_num_threads() { return requested_threads().load(std::memory_order_relaxed); }

namespace detail {

void run_parallel(int64_t n, int64_t grain, ChunkFunction call, const void* fn) {
  const int threads = get_num_threads();
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min({n / grain, threads * kChunksPerThread, int64_t(0xffff)});
  if (threads == 1 || chunks < 2 || inside_parallel_region) return call(fn, 0, n);
  PoolState& pool = state();
  std::unique_lock<std::mutex> owner(pool.owner, std::try_to_lock);
  if (!owner.owns_lock()) return call(fn, 0, n);  // another thread's op has the pool: no oversubscription
  pool_of(pool, threads).run(n, chunks, call, fn);
}

void run_blas_jobs(int, void (*dojob)(int, void*, int), int jobs, size_t job_size, void* job_data,
                   int dojob_data) noexcept {
  auto* data = static_cast<char*>(job_data);
  const auto job = [&](int64_t i) { dojob(int(i), data + i * job_size, dojob_data); };
  const ChunkFunction call = [](const void* f, int64_t begin, int64_t) { (*static_cast<decltype(job)*>(f))(begin); };
  if (jobs == 1) return job(0);
  // Threads of their own, all started before this thread runs job 0; one that cannot start
  // ends the process (noexcept), as the jobs already running would wait for it forever.
  const auto on_new_threads = [&] {
    std::vector<std::thread> threads;
    for (int i = 1; i < jobs; ++i) threads.emplace_back(job, i);
    job(0);
    for (std::thread& thread : threads) thread.join();
  };
  if (inside_parallel_region) {  // from a chunk of a parallel_for, which has the pool: tapegrad never does this
    static std::mutex nested;
    std::lock_guard<std::mutex> lock(nested);
    return on_new_threads();
  }
  PoolState& pool = state();
  std::lock_guard<std::mutex> owner(pool.owner);  // waits for another thread's op or BLAS call
  ThreadPool& workers = pool_of(pool, get_num_threads());
  if (jobs > workers.workers() + 1) return on_new_threads();  // OPENBLAS_NUM_THREADS above ours, say
  workers.run(jobs, jobs, call, &job);  // chunk i is [i, i + 1)
}

}  // namespace detail

#ifdef TAPEGRAD_OPENBLAS_THREADS_CALLBACK
namespace {
// Installed when the library loads, before any BLAS call of ours.
const bool blas_runs_on_the_pool = (TG_OPENBLAS(set_threads_callback_function)(&detail::run_blas_jobs), true);
}  // namespace
#endif

}  // namespace tg
