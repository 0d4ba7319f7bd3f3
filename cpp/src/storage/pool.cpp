// The caching buffer pool: freed buffers go to a free list of their size class and serve
// the next request of that class, so a steady-state training step asks the system for
// no memory (and, for large buffers, takes no page faults). What it keeps is bounded, so that
// memory a program frees goes back to the system as it would without the pool: the free
// lists hold at most as many bytes as tensors use (or 64 MiB), and large buffers of a size
// the program stopped asking for are returned when it asks for a new one. Storage, which
// holds a pool buffer, allocates, frees and lazily zeroes it here.
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <utility>
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
// The free lists may always hold this much, and beyond it as many bytes as buffers in use:
// a training step's temporaries come back at its end while its parameters and gradients stay.
constexpr size_t kMinCachedBytes = size_t(64) << 20;
// Buffers from this size are mapped from the system directly and unmapped when released, so
// that a release returns the memory at once: glibc's malloc keeps freed chunks of up to 32 MiB
// in its heap, resident.
constexpr size_t kLargeBlock = size_t(1) << 20;
// A size class of large buffers not asked for in this many requests is stale: when a request
// must go to the system, the stale classes' free buffers are released first (a workload whose
// sizes change would otherwise hold the buffers of every size it went through).
constexpr uint64_t kStaleRequests = 16;

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

// A block of `capacity` bytes (a size class's), 64-byte aligned, from the system; null if
// there is none.
void* allocate_block(size_t capacity) {
  if (capacity < kLargeBlock) return std::aligned_alloc(kAlignment, capacity);
  void* block = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return block == MAP_FAILED ? nullptr : block;
}

void release_block(void* block, size_t capacity) {
  if (capacity < kLargeBlock)
    std::free(block);
  else
    munmap(block, capacity);
}

struct Block {
  void* data;
  size_t capacity;
};

// Returns the blocks to the system (outside the pool's lock: munmap takes a while).
void release_blocks(const std::vector<Block>& blocks) {
  for (const Block& block : blocks) release_block(block.data, block.capacity);
}

class Pool {
 public:
  void* take(size_t nbytes, size_t* capacity) {
    int index;
    *capacity = size_class(nbytes, &index);
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      SizeClass& size_class = class_of(index, *capacity);
      size_class.last_request = ++requests_;
      if (!size_class.free.empty()) {
        void* block = size_class.free.back();
        size_class.free.pop_back();
        cached_bytes_ -= *capacity;
        in_use_bytes_ += *capacity;
        ++reuses_;
        return block;
      }
      ++os_allocations_;
      if (size_class.trimmed) size_class.recurs = true;
      if (*capacity >= kLargeBlock) release_stale_classes(&released);
    }
    release_blocks(released);
    TG_CHECK_AS(MemoryError, nbytes <= memory_bytes(), "can't allocate memory: you tried to allocate ", nbytes,
                " bytes, more than the machine's memory and swap (", memory_bytes(), " bytes)");
    void* block = allocate_block(*capacity);
    TG_CHECK_AS(MemoryError, block != nullptr, "can't allocate memory: you tried to allocate ", nbytes, " bytes");
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_bytes_ += *capacity;
    return block;
  }

  void give_back(void* block, size_t capacity) {
    int index;
    size_class(capacity, &index);
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      class_of(index, capacity).free.push_back(block);
      cached_bytes_ += capacity;
      in_use_bytes_ -= capacity;
      release_least_recent(std::max(kMinCachedBytes, in_use_bytes_), &released);
    }
    release_blocks(released);
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {os_allocations_, reuses_, cached_bytes_};
  }

  void empty() {
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (SizeClass& size_class : classes_) {
        release_all_of(size_class, &released);
        size_class = SizeClass{};  // and forgets which sizes recur
      }
    }
    release_blocks(released);
  }

 private:
  struct SizeClass {
    size_t capacity = 0;
    std::vector<void*> free;
    uint64_t last_request = 0;  // requests_ when this class was last asked for
    bool trimmed = false;       // its free buffers were released as stale
    bool recurs = false;        // asked for again after that: never released as stale again
  };

  SizeClass& class_of(int index, size_t capacity) {
    if (index >= static_cast<int>(classes_.size())) classes_.resize(index + 1);
    classes_[index].capacity = capacity;
    return classes_[index];
  }

  void release_all_of(SizeClass& size_class, std::vector<Block>* released) {
    for (void* block : size_class.free) released->push_back({block, size_class.capacity});
    cached_bytes_ -= size_class.free.size() * size_class.capacity;
    size_class.free.clear();
  }

  void release_stale_classes(std::vector<Block>* released) {
    for (SizeClass& size_class : classes_)
      if (size_class.capacity >= kLargeBlock && !size_class.free.empty() && !size_class.recurs &&
          requests_ - size_class.last_request > kStaleRequests) {
        release_all_of(size_class, released);
        size_class.trimmed = true;
      }
  }

  // Releases free buffers, of the classes asked for least recently first, down to `limit`
  // cached bytes.
  void release_least_recent(size_t limit, std::vector<Block>* released) {
    while (cached_bytes_ > limit) {
      SizeClass* oldest = nullptr;
      for (SizeClass& size_class : classes_)
        if (!size_class.free.empty() && (!oldest || size_class.last_request < oldest->last_request))
          oldest = &size_class;
      released->push_back({oldest->free.back(), oldest->capacity});
      oldest->free.pop_back();
      cached_bytes_ -= oldest->capacity;
    }
  }

  ForkSafeMutex mutex_;
  std::vector<SizeClass> classes_;  // by size_class() index
  uint64_t requests_ = 0, os_allocations_ = 0, reuses_ = 0, cached_bytes_ = 0, in_use_bytes_ = 0;
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

void* Storage::escaping_data() {
  escaped_.store(true, std::memory_order_relaxed);
  return data();
}

bool Storage::zero_lazily() {
  if (owner_ || escaped_.load(std::memory_order_relaxed)) return false;
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
