// Storage: one contiguous buffer shared by a tensor and its views, with the version counter
// those views share (bumped by every in-place write, checked by saved tensors).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace tg {

class Storage {
 public:
  // A buffer from the caching pool (contents uninitialised).
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Memory owned elsewhere (a numpy array): `owner` is kept alive as long as the storage.
  static std::shared_ptr<Storage> wrap(void* data, size_t nbytes, std::shared_ptr<void> owner);

  Storage(void* data, size_t nbytes, std::shared_ptr<void> owner)
      : data_(data), nbytes_(nbytes), owner_(std::move(owner)) {}
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  // The buffer, its zeros written first if it was zeroed lazily.
  void* data() const {
    if (zero_pending_.load(std::memory_order_acquire)) write_pending_zeros();
    return data_;
  }
  size_t nbytes() const { return nbytes_; }
  // The buffer, for a raw pointer handed out of tapegrad (data_ptr()) whose reads and
  // writes it can't see: its pending zeros are written, and it is never zeroed lazily again.
  // (A numpy array or buffer-protocol view holds a reference to the storage instead, which
  // keeps zero_ eager while the view lives.)
  void* escaping_data();
  // Zeroes a pool buffer by marking it (wrapped memory is seen by its owner, and a pointer
  // from escaping_data() by whoever holds it: false, nothing done): the zeros are written
  // when data() is next called, unless a writer of every element takes the mark first. A
  // gradient buffer zeroed between steps is then never written twice nor read as zeros. The
  // caller holds the only reference to the storage.
  bool zero_lazily();
  // Whether the buffer was zeroed lazily and its zeros are not written yet.
  bool zero_pending() const { return zero_pending_.load(std::memory_order_acquire); }
  // zero_pending(), clearing the mark without writing the zeros: the caller writes every
  // element instead (the first gradient, in place of adding it to zeros).
  bool take_zero_pending() { return zero_pending_.exchange(false, std::memory_order_acq_rel); }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void write_pending_zeros() const;

  void* data_;
  size_t nbytes_;
  std::shared_ptr<void> owner_;  // null when the buffer came from the pool
  uint64_t version_ = 0;
  mutable std::atomic<bool> zero_pending_{false};
  std::atomic<bool> escaped_{false};  // escaping_data() was called
};

// Counters of the buffer pool, for tests and benchmarks.
struct PoolStats {
  uint64_t os_allocations;  // buffers obtained from the system
  uint64_t reuses;          // requests served from the pool's free lists
  uint64_t cached_bytes;    // bytes held in free lists now
};
PoolStats pool_stats();
void empty_pool();  // returns every cached buffer to the system (tg.empty_cache()), and starts over

}  // namespace tg
