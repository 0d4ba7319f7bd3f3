// The caching buffer pool: freed buffers are reused by size class, every buffer is
// 64-byte aligned, a steady-state training step asks the system for no memory, and a pool
// buffer zeroed lazily reads as zeros.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "../testing.h"

namespace tg {
namespace {

// A request size no other test in this process uses, so its size class starts empty.
constexpr size_t kOddSize = 3000;

TEST(Pool, AFreedBufferServesTheNextRequestOfItsSizeClass) {
  empty_pool();
  void* first_data = nullptr;
  const PoolStats before = pool_stats();
  {
    const auto storage = Storage::allocate(kOddSize);
    first_data = storage->data();
  }
  const PoolStats freed = pool_stats();
  EXPECT_EQ(freed.os_allocations, before.os_allocations + 1);
  EXPECT_GE(freed.cached_bytes, before.cached_bytes + kOddSize);

  // A slightly smaller request falls in the same class (four classes per power of two).
  const auto again = Storage::allocate(kOddSize - 100);
  const PoolStats reused = pool_stats();
  EXPECT_EQ(again->data(), first_data);
  EXPECT_EQ(reused.os_allocations, freed.os_allocations);
  EXPECT_EQ(reused.reuses, freed.reuses + 1);
  EXPECT_EQ(reused.cached_bytes, before.cached_bytes);
}

TEST(Pool, EmptyPoolReturnsCachedBuffersToTheSystem) {
  { const auto storage = Storage::allocate(kOddSize); }
  EXPECT_GT(pool_stats().cached_bytes, 0u);
  empty_pool();
  EXPECT_EQ(pool_stats().cached_bytes, 0u);
  const PoolStats before = pool_stats();
  const auto storage = Storage::allocate(kOddSize);
  EXPECT_EQ(pool_stats().os_allocations, before.os_allocations + 1);
  EXPECT_EQ(pool_stats().reuses, before.reuses);
}

TEST(Pool, KeepsNoMoreFreedBytesThanAreInUseBeyond64MiB) {
  empty_pool();
  constexpr size_t kMiB = size_t(1) << 20;
  auto kept = Storage::allocate(96 * kMiB);
  {
    std::vector<std::shared_ptr<Storage>> dropped;
    for (int i = 0; i < 200; ++i) dropped.push_back(Storage::allocate(kMiB));
  }
  // As much as is in use (96 MiB, and whatever else this process holds), not all 200 MiB.
  EXPECT_GE(pool_stats().cached_bytes, 96 * kMiB);
  EXPECT_LE(pool_stats().cached_bytes, 128 * kMiB);
  kept.reset();
  EXPECT_LE(pool_stats().cached_bytes, 64 * kMiB);
  empty_pool();
}

TEST(Pool, ALargeSizeNoLongerAskedForIsReleasedForANewOne) {
  empty_pool();
  constexpr size_t kMiB = size_t(1) << 20;
  const auto ask_for = [](size_t nbytes, int times) {
    for (int i = 0; i < times; ++i) Storage::allocate(nbytes);
  };
  ask_for(3 * kMiB, 1);
  ask_for(5 * kMiB, 20);
  EXPECT_EQ(pool_stats().cached_bytes, 3 * kMiB + 5 * kMiB);
  ask_for(7 * kMiB, 1);  // from the system: 3 MiB, not asked for in 21 requests, goes back
  EXPECT_EQ(pool_stats().cached_bytes, 5 * kMiB + 7 * kMiB);
  // Asked for again after that, a size is never released as stale again.
  ask_for(3 * kMiB, 1);
  ask_for(5 * kMiB, 20);
  ask_for(10 * kMiB, 1);  // 7 MiB goes back, 3 MiB stays
  EXPECT_EQ(pool_stats().cached_bytes, 3 * kMiB + 5 * kMiB + 10 * kMiB);
  empty_pool();
}

const size_t kRequestSizes[] = {0, 1, 63, 64, 65, 1000, 1024, 1025, 1300, 4097, 100000, size_t(1) << 22};

TEST(Pool, BuffersAre64ByteAligned) {
  for (size_t nbytes : kRequestSizes) {
    const auto storage = Storage::allocate(nbytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(storage->data()) % 64, 0u) << nbytes << " bytes";
    EXPECT_GE(storage->nbytes(), nbytes);
  }
}

TEST(Pool, SizeClassesWasteLessThanAQuarterOfARequest) {
  // Past 1 KiB there are four size classes per power of two: [2^k, 2^(k+1)] is cut into
  // steps of 2^(k-2), so a request just above a class boundary wastes under a quarter.
  for (size_t nbytes : kRequestSizes) {
    if (nbytes <= 1024) continue;  // multiples of 64 bytes there
    const auto storage = Storage::allocate(nbytes);
    EXPECT_LT(storage->nbytes() - nbytes, nbytes / 4) << nbytes << " bytes got a buffer of " << storage->nbytes();
  }
}

TEST(Pool, TensorsOfEveryDtypeAreAligned) {
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64, DType::Bool}) {
    const Tensor t = Tensor::empty(Shape{3, 7}, dtype);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << dtype_name(dtype);
  }
}

TEST(Pool, ASteadyStateTrainingStepAllocatesNoBuffers) {
  Tensor x = testing::leaf(testing::draw(1000, testing::Domain::Real, 1), Shape{1000});
  Tensor w = testing::leaf(testing::draw(1000, testing::Domain::Real, 2), Shape{1000});
  const auto step = [&] {
    Tensor h = x * w + 0.5;
    sum(h * h).backward();
    Tensor x_grad = x.grad(), w_grad = w.grad();
    zero_(x_grad);
    zero_(w_grad);
  };
  step();
  step();  // the second step fills the free lists the first one left short
  const uint64_t os_allocations = pool_stats().os_allocations;
  for (int i = 0; i < 10; ++i) step();
  EXPECT_EQ(pool_stats().os_allocations, os_allocations);
}

TEST(Storage, ABufferZeroedLazilyReadsAsZeros) {
  const auto storage = Storage::allocate(kOddSize);
  std::memset(storage->data(), 0xff, storage->nbytes());
  ASSERT_TRUE(storage->zero_lazily());
  EXPECT_TRUE(storage->zero_pending());
  const auto* bytes = static_cast<const unsigned char*>(storage->data());
  EXPECT_FALSE(storage->zero_pending());
  for (size_t i = 0; i < storage->nbytes(); ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i;
}

TEST(Storage, TakingTheMarkLeavesTheBufferToTheTaker) {
  const auto storage = Storage::allocate(kOddSize);
  std::memset(storage->data(), 0xff, storage->nbytes());
  ASSERT_TRUE(storage->zero_lazily());
  EXPECT_TRUE(storage->take_zero_pending());
  EXPECT_FALSE(storage->take_zero_pending());
  EXPECT_EQ(static_cast<const unsigned char*>(storage->data())[0], 0xff);  // the taker writes it
}

TEST(Storage, WrappedMemoryIsNeverZeroedLazily) {
  std::vector<float> owned(16, 1.0f);
  const auto storage = Storage::wrap(owned.data(), owned.size() * sizeof(float), std::make_shared<int>(0));
  EXPECT_FALSE(storage->zero_lazily());
  EXPECT_FALSE(storage->zero_pending());
  EXPECT_EQ(owned[0], 1.0f);
}

TEST(Storage, ABufferWhosePointerEscapedIsNeverZeroedLazily) {
  const auto storage = Storage::allocate(kOddSize);
  ASSERT_TRUE(storage->zero_lazily());
  auto* bytes = static_cast<unsigned char*>(storage->escaping_data());
  EXPECT_FALSE(storage->zero_pending());
  EXPECT_EQ(bytes[0], 0);  // the pending zeros were written first
  EXPECT_FALSE(storage->zero_lazily());
  EXPECT_FALSE(storage->zero_pending());
}

TEST(Storage, ThreadsReadingABufferZeroedLazilyAllSeeZeros) {
  const size_t nbytes = size_t(1) << 22;
  for (int round = 0; round < 20; ++round) {
    const auto storage = Storage::allocate(nbytes);
    std::memset(storage->data(), 0xff, nbytes);
    ASSERT_TRUE(storage->zero_lazily());
    std::vector<int> last_bytes(4, -1);
    std::vector<std::thread> readers;
    for (size_t k = 0; k < last_bytes.size(); ++k)
      readers.emplace_back([&, k] { last_bytes[k] = static_cast<const unsigned char*>(storage->data())[nbytes - 1]; });
    for (std::thread& reader : readers) reader.join();
    for (int byte : last_bytes) ASSERT_EQ(byte, 0) << "round " << round;
  }
}

TEST(Tensor, ZeroOfAnUnsharedBufferIsLazyAndOfASharedOneIsNot) {
  Tensor t = full(Shape{1000}, 3.0, DType::Float32);
  zero_(t);
  EXPECT_TRUE(t.storage()->zero_pending());
  EXPECT_EQ(sum(t).item(), 0.0);

  Tensor u = full(Shape{1000}, 3.0, DType::Float32);
  const Tensor view = reshape(u, {10, 100});  // shares the buffer
  zero_(u);
  EXPECT_FALSE(u.storage()->zero_pending());
  EXPECT_EQ(sum(view).item(), 0.0);
}

}  // namespace
}  // namespace tg
