// Intra-op parallelism: the thread count shared by tapegrad's pool and OpenBLAS, and
// parallel_for, which splits a large loop over the pool's persistent workers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg {

// The threads one op may use: tapegrad's pool runs elementwise kernels and fills on
// `threads`, and OpenBLAS's matrix products on as many (through run_blas_jobs, where the
// OpenBLAS build has a threading callback; else on OpenBLAS's own `threads`).
// The default is OMP_NUM_THREADS when set, else the cores this process may run on
// (its affinity mask); until set_num_threads is called, OpenBLAS keeps its own default.
// Counts above max_num_threads() are lowered to it; set_num_threads starts the pool's
// threads, and throws RuntimeError, keeping the count it had, if the system cannot start them.
void set_num_threads(int64_t threads);
int get_num_threads();
// The most threads one op may use: OpenBLAS's MAX_THREADS (its per-thread state is sized
// for that many when it is built), else the available cores.
int max_num_threads();

// The least work per chunk of an elementwise loop: such loops split across the pool from
// 2 * kParallelGrain elements. Measured on 2 cores busy with other work: at 2^16 float32
// elements, exp and tanh ran 2.4-2.7x faster on 2 threads than on 1, but a multiply, bound
// by memory, ran up to 1.9x slower at 2^16 and 2^18 (the second core being taken by others)
// and even at 2^22.
constexpr int64_t kParallelGrain = int64_t(1) << 15;

namespace detail {
using ChunkFunction = void (*)(const void* fn, int64_t begin, int64_t end);
void run_parallel(int64_t n, int64_t grain, ChunkFunction call, const void* fn);

// OpenBLAS's threading callback, installed when tapegrad loads: runs
// dojob(i, job_data + i * job_size, dojob_data) for each i in [0, jobs) and returns when all
// are done. One pool then serves both: OpenBLAS's own workers spin for about 0.1 s after
// each call, and on 2 cores took one from the elementwise ops between matrix products.
// Its jobs wait for each other (the threads of a level-3 product spin on each other's
// progress), so they run all at once, each on its own thread; and jobs of different calls
// share OpenBLAS's per-job buffers, so one call runs at a time.
void run_blas_jobs(int sync, void (*dojob)(int, void*, int), int jobs, size_t job_size, void* job_data,
                   int dojob_data) noexcept;
}  // namespace detail

// Calls fn(begin, end) over consecutive chunks that cover [0, n), each of at least `grain`
// iterations, on the pool's workers and the calling thread, and returns when all are done;
// the first exception a chunk throws is rethrown here. Below 2 * grain iterations (and with
// one thread, inside another parallel_for, or while another thread holds the pool) it is
// one inline call fn(0, n). fn must be safe to run on several chunks at once.
template <class Fn>
void parallel_for(int64_t n, int64_t grain, const Fn& fn) {
  if (n < 2 * grain) {
    if (n > 0) fn(int64_t(0), n);
    return;
  }
  detail::run_parallel(n, grain, [](const void* f, int64_t begin, int64_t end) { (*static_cast<const Fn*>(f))(begin, end); },
                       &fn);
}

}  // namespace tg
