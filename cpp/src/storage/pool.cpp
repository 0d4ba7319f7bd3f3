// The caching buffer pool: freed buffers go to a free list of their size class and serve
// the next request of that class, so a steady-state training step asks the system for
// no memory (and, for large buffers, takes no page faults). Storage, which holds a pool
// buffer, allocates, frees and lazily zeroes it here.
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <vector>

#ifdef __linux__
#include <sys/sysinfo.h>
#endif

#include "parallel/fork.h"
#include "tapegrad/error.h"
#include "tapegrad/storage.h"

namespace tg {
namespace {

constexpr size_t kAlignment = 64;  // a cache line, and a full AVX-512 register
constexpr size_t kMaxCachedBytes = size_t(1) << 30;

// Size classes: multiples of 64 bytes up to 1 KiB, then four classes per power of two,
// so a request wastes at most a quarter of its size.
size_t size_class(size_t nbytes, int* index) {
  if (nbytes <= 1024) {
    const size_t rounded = nbytes <= kAlignment ? kAlignment : (nbytes + kAlignment - 1) / kAlignment * kAlignment;
    *index = static_cast<int>(rounded / kAlignment) - 1;  // 0..15
    return rounded;
  }
  const int log2 = 63 - __builtin_clzll(nbytes - 1);  // 2^log2 < nbytes <= 2^(log2+1)
  const size_t quarter = size_t(1) << (log2 - 2);
  const size_t base = size_t(1) << log2;
  const size_t steps = (nbytes - base + quarter - 1) / quarter;  // 1..4
  *index = 16 + (log2 - 10) * 4 + static_cast<int>(steps) - 1;
  return base + steps * quarter;
}

// RAM plus swap. A system that overcommits would hand out a larger block and kill the
// process when the tensor's values are written, so larger requests fail here instead.
size_t memory_bytes() {
  static const size_t bytes = [] {
#ifdef __linux__
    struct sysinfo info;
    if (sysinfo(&info) == 0) return size_t(info.totalram + info.totalswap) * info.mem_unit;
#endif
    return std::numeric_limits<size_t>::max();
  }();
  return bytes;
}

class Pool {
 public:
  void* take(size_t nbytes, size_t* capacity) {
    int index;
    *capacity = size_class(nbytes, &index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (index < static_cast<int>(free_.size()) && !free_[index].empty()) {
        void* block = free_[index].back();
        free_[index].pop_back();
        cached_bytes_ -= *capacity;
        ++reuses_;
        return block;
      }
      ++os_allocations_;
    }
    TG_CHECK_AS(MemoryError, nbytes <= memory_bytes(), "can't allocate memory: you tried to allocate ", nbytes,
                " bytes, more than the machine's memory and swap (", memory_bytes(), " bytes)");
    void* block = std::aligned_alloc(kAlignment, *capacity);
    TG_CHECK_AS(MemoryError, block != nullptr, "can't allocate memory: you tried to allocate ", nbytes, " bytes");
    return block;
  }

  void give_back(void* block, size_t capacity) {
    int index;
    size_class(capacity, &index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + capacity <= kMaxCachedBytes) {
        if (index >= static_cast<int>(free_.size())) free_.resize(index + 1);
        free_[index].push_back(block);
        cached_bytes_ += capacity;
        return;
      }
    }
    std::free(block);
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {os_allocations_, reuses_, cached_bytes_};
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& list : free_) {
      for (void* block : list) std::free(block);
      list.clear();
    }
    cached_bytes_ = 0;
  }

 private:
  ForkSafeMutex mutex_;
  std::vector<std::vector<void*>> free_;
  uint64_t os_allocations_ = 0, reuses_ = 0, cached_bytes_ = 0;
};

// Never destroyed: tensors held by Python may outlive static destruction at exit.
Pool& pool() {
  static Pool* instance = new Pool();
  return *instance;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  size_t capacity;
  void* data = pool().take(nbytes, &capacity);
  auto storage = std::make_shared<Storage>(data, capacity, nullptr);
  return storage;
}

std::shared_ptr<Storage> Storage::wrap(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  TG_ASSERT(owner != nullptr);
  return std::make_shared<Storage>(data, nbytes, std::move(owner));
}

bool Storage::zero_lazily() {
  if (owner_) return false;
  zero_pending_.store(true, std::memory_order_release);
  return true;
}

void Storage::write_pending_zeros() const {
  // Kernels read their operands before they split across the pool, but a rule's saved tensor
  // may be read from a worker: the first thread writes the zeros, any other waits for them.
  static ForkSafeMutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (!zero_pending_.load(std::memory_order_relaxed)) return;
  std::memset(data_, 0, nbytes_);
  zero_pending_.store(false, std::memory_order_release);
}

Storage::~Storage() {
  if (!owner_) pool().give_back(data_, nbytes_);
}

PoolStats pool_stats() { return pool().stats(); }
void empty_pool() { pool().empty(); }

}  // namespace tg
