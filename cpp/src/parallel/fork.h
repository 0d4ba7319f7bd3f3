// What fork() must not cut through: a forked child has only the thread that forked, so a
// lock another thread held at that moment stays held there for ever, and the data it
// guarded may be half-updated. fork() therefore waits, in one pthread_atfork handler, until
// no thread is inside a BLAS call or holds a ForkSafeMutex, and lets them go on after it in
// both processes. The engine's lock and the thread pool rebuild their own state in the child.
#pragma once

#include <mutex>

namespace tg {

// A mutex that fork() takes before it forks and releases after, in the parent and the child:
// the child never inherits it held, nor the data it guards half-written. For short critical
// sections that wait for nothing else while they hold it (fork holds every such mutex at
// once, so one section waiting on another could deadlock it). Used as a std::mutex.
class ForkSafeMutex : public std::mutex {
 public:
  ForkSafeMutex();
  ~ForkSafeMutex();
  ForkSafeMutex(const ForkSafeMutex&) = delete;
  ForkSafeMutex& operator=(const ForkSafeMutex&) = delete;
};

// Marks a BLAS call in progress for its lifetime. fork() waits until no thread is inside
// one, and one does not start while a fork is under way: OpenBLAS's level-3 driver holds a
// lock of its own through a call, which a child would inherit held and wait on for ever.
// Calls on several threads run at once.
class BlasCallInProgress {
 public:
  BlasCallInProgress();
  ~BlasCallInProgress();
  BlasCallInProgress(const BlasCallInProgress&) = delete;
  BlasCallInProgress& operator=(const BlasCallInProgress&) = delete;
};

}  // namespace tg
