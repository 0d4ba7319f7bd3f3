// fork()'s handlers for ForkSafeMutex and BlasCallInProgress (see fork.h).
#include "parallel/fork.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace tg {
namespace {

// Every ForkSafeMutex alive. Heap-allocated and never freed: mutexes are function-local
// statics of other files, constructed and destroyed in any order around this file's.
struct Registry {
  std::mutex mutex;  // held from fork's prepare handler to its parent and child handlers
  std::vector<ForkSafeMutex*> mutexes;
};
Registry& registry() {
  static Registry* instance = new Registry();
  return *instance;
}

std::atomic<int> blas_calls_in_progress{0};
std::atomic<bool> fork_pending{false};

// Runs in the forking thread before fork(). BLAS calls first: one may wait for a thread
// pool job whose chunk takes a ForkSafeMutex, but no holder of one waits for a BLAS call.
void before_fork() {
  fork_pending.store(true);
  while (blas_calls_in_progress.load() > 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  Registry& all = registry();
  all.mutex.lock();
  for (ForkSafeMutex* mutex : all.mutexes) mutex->lock();
}

// Runs in the parent after fork(), and in the child on its one thread, the one that forked.
void after_fork() {
  Registry& all = registry();
  for (auto mutex = all.mutexes.rbegin(); mutex != all.mutexes.rend(); ++mutex) (*mutex)->unlock();
  all.mutex.unlock();
  fork_pending.store(false);
}

// Installed when the library loads, after OpenBLAS's own handlers (tapegrad links it), so
// that this prepare handler runs before OpenBLAS's, which stops its threads.
const bool fork_handlers_installed = (pthread_atfork(&before_fork, &after_fork, &after_fork), true);

}  // namespace

ForkSafeMutex::ForkSafeMutex() {
  Registry& all = registry();
  std::lock_guard<std::mutex> lock(all.mutex);
  all.mutexes.push_back(this);
}

ForkSafeMutex::~ForkSafeMutex() {
  Registry& all = registry();
  std::lock_guard<std::mutex> lock(all.mutex);
  all.mutexes.erase(std::find(all.mutexes.begin(), all.mutexes.end(), this));
}

BlasCallInProgress::BlasCallInProgress() {
  // Counted first, then checked: a fork that starts now either sees this call and waits for
  // it, or is seen here, and the call steps back until the fork is done.
  for (;;) {
    blas_calls_in_progress.fetch_add(1);
    if (!fork_pending.load()) return;
    blas_calls_in_progress.fetch_sub(1);
    while (fork_pending.load()) std::this_thread::yield();
  }
}

BlasCallInProgress::~BlasCallInProgress() { blas_calls_in_progress.fetch_sub(1); }

}  // namespace tg
