// Storage: one contiguous buffer shared by a tensor and its views, with the version counter
// those views share (bumped by every in-place write, checked by saved tensors).
#pragma once

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

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_;
  size_t nbytes_;
  std::shared_ptr<void> owner_;  // null when the buffer came from the pool
  uint64_t version_ = 0;
};

// Counters of the buffer pool, for tests and benchmarks.
struct PoolStats {
  uint64_t os_allocations;  // buffers obtained from the system
  uint64_t reuses;          // requests served from the pool's free lists
  uint64_t cached_bytes;    // bytes held in free lists now
};
PoolStats pool_stats();
void empty_pool();  // returns every cached buffer to the system

}  // namespace tg
