// Asynchronous offload and reload, on CPU: the stash with a copier whose
// copies land later on another thread (tests/worker/deferred_copier.h).
// Each test names the ordering rule it guards; removing the matching wait
// or hold from worker/stash.cc makes it fail.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/worker/deferred_copier.h"
#include "tests/worker/pipeline_harness.h"
#include "worker/memory_ledger.h"
#include "worker/pinned_pool.h"
#include "worker/pooled_host_tensor.h"
#include "worker/stash.h"

namespace chronos::worker {
namespace {

using testing::DeferredCopier;

DeferredCopier::Options Manual(std::shared_ptr<PinnedPool> pool = nullptr) {
  DeferredCopier::Options o;
  o.manual = true;
  o.pool = std::move(pool);
  return o;
}

// Rule: device bytes leave the ledger (and the source is released) only when
// the host has seen the copy finish.
TEST(AsyncCopyTest, OffloadReleasesDeviceBytesOnlyAfterTheCopyIsDone) {
  MemoryLedger ledger;
  DeferredCopier copier(Manual());
  ActivationStash stash(&ledger, &copier);
  at::Tensor t = at::arange(10, at::kFloat);
  stash.Put(0, 0, 0, "x", t);
  EXPECT_EQ(stash.Offload(0, 0, 0.5), 5 * 4);
  EXPECT_EQ(stash.copies_in_flight(), 1);
  stash.Poll();
  // Not landed: the whole tensor is still on the device and in the ledger.
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 10 * 4);
  EXPECT_EQ(ledger.Snapshot().offloaded_bytes, 0);
  EXPECT_GT(t.storage().use_count(), 1);
  copier.Release();
  // Landed but not yet seen done by the host: still held.
  stash.Poll();
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 10 * 4);
  copier.Acknowledge();
  stash.Poll();
  EXPECT_EQ(stash.copies_in_flight(), 0);
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 5 * 4);
  EXPECT_EQ(ledger.Snapshot().offloaded_bytes, 5 * 4);
  EXPECT_EQ(t.storage().use_count(), 1);  // the stash let the source go
  EXPECT_EQ(ledger.Snapshot().peak_resident_bytes, 10 * 4);
}

// Rule: the compute that reads a reloaded tensor is ordered after the copy
// (the destination is NaN until the copy lands).
TEST(AsyncCopyTest, ReloadedTensorIsReadOnlyAfterItsCopyLands) {
  MemoryLedger ledger;
  DeferredCopier::Options o;
  o.delay_us = 20000;  // 20 ms: Get runs long before the copy would land
  DeferredCopier copier(o);
  ActivationStash stash(&ledger, &copier);
  at::Tensor t = at::randn({4, 6}, at::kFloat);
  at::Tensor ids = at::arange(7, at::kLong);
  stash.Put(1, 2, 0, "x", t);
  stash.Put(1, 2, 1, "ids", ids);
  stash.Offload(1, 2, 1.0);
  stash.Synchronize();
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
  EXPECT_EQ(stash.Reload(1, 2), 4 * 6 * 4 + 7 * 8);
  EXPECT_TRUE(at::equal(stash.Get(1, 2, 0, "x"), t));
  EXPECT_TRUE(at::equal(stash.Get(1, 2, 1, "ids"), ids));
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 4 * 6 * 4 + 7 * 8);
  EXPECT_EQ(ledger.Snapshot().offloaded_bytes, 0);
}

// Rule: a pinned host block returns to the pool only after the host has
// seen the reload that reads it finish, so no later offload overwrites it
// while the device still copies from it.
TEST(AsyncCopyTest, HostBlockStaysOutOfThePoolUntilTheReloadIsDone) {
  auto pool = std::make_shared<PinnedPool>(PageableHostMemory(), 64 << 20);
  MemoryLedger ledger;
  DeferredCopier copier(Manual(pool));
  ActivationStash stash(&ledger, &copier);
  at::Tensor t = at::randn({1000}, at::kFloat);
  stash.Put(0, 0, 0, "x", t);
  stash.Offload(0, 0, 0.5);
  copier.Release();
  copier.Acknowledge();
  stash.Poll();
  const int64_t block = pool->Stats().in_use_bytes;
  EXPECT_EQ(block, static_cast<int64_t>(PinnedPool::kGranule));
  stash.Reload(0, 0);
  copier.Release();  // the data lands; the host has not seen it yet
  EXPECT_TRUE(at::equal(stash.Get(0, 0, 0, "x"), t));
  stash.Poll();
  EXPECT_EQ(pool->Stats().in_use_bytes, block);  // still held
  copier.Acknowledge();
  stash.Poll();
  EXPECT_EQ(pool->Stats().in_use_bytes, 0);
  stash.Erase(0, 0, 0, "x");
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
}

// Rule: a reload of an offload still in flight keeps the device tensor that
// never left, copies nothing back, and holds the host block until the copy
// into it is done.
TEST(AsyncCopyTest, ReloadBeforeTheOffloadLandsKeepsTheDeviceTensor) {
  auto pool = std::make_shared<PinnedPool>(PageableHostMemory(), 64 << 20);
  MemoryLedger ledger;
  DeferredCopier copier(Manual(pool));
  ActivationStash stash(&ledger, &copier);
  at::Tensor t = at::randn({300}, at::kFloat);
  stash.Put(0, 0, 0, "x", t);
  stash.Offload(0, 0, 1.0);
  EXPECT_EQ(stash.Reload(0, 0), 0);
  EXPECT_EQ(copier.started(), 1);  // no copy back
  EXPECT_TRUE(at::equal(stash.Get(0, 0, 0, "x"), t));
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 300 * 4);
  EXPECT_EQ(ledger.Snapshot().offloaded_total_bytes, 0);
  stash.Poll();
  EXPECT_GT(pool->Stats().in_use_bytes, 0);  // the copy still writes it
  copier.Release();
  copier.Acknowledge();
  stash.Poll();
  EXPECT_EQ(pool->Stats().in_use_bytes, 0);
}

// Rule: erasing an entry mid-copy waits for the copy; nothing leaks from
// the ledger or the pool.
TEST(AsyncCopyTest, EraseAndClearMidCopyLeaveNothingBehind) {
  auto pool = std::make_shared<PinnedPool>(PageableHostMemory(), 64 << 20);
  MemoryLedger ledger;
  DeferredCopier::Options o;
  o.delay_us = 5000;
  o.pool = pool;
  DeferredCopier copier(o);
  {
    ActivationStash stash(&ledger, &copier);
    stash.Put(0, 0, 0, "a", at::randn({100}, at::kFloat));
    stash.Put(0, 1, 0, "b", at::randn({100}, at::kFloat));
    stash.Offload(0, 0, 1.0);
    stash.Offload(0, 1, 0.5);
    stash.EraseChunk(0, 0);
    EXPECT_EQ(ledger.Snapshot().resident_bytes, 100 * 4);
    stash.Clear();
    EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
    EXPECT_EQ(ledger.Snapshot().offloaded_bytes, 0);
  }
  EXPECT_EQ(pool->Stats().in_use_bytes, 0);
}

// The whole pipeline with copies that land late on another thread: every
// offload and reload of a mixed policy goes through the asynchronous path,
// and the losses equal the synchronous run's exactly.
TEST(AsyncCopyTest, PipelineWithLateCopiesMatchesTheSynchronousRun) {
  testing::TinyJob job;
  job.iterations = 3;
  job.data_path = testing::AnyTextCorpus();
  const std::vector<int> layers = {2, 2};
  testing::PipelineRun run;
  run.spec = testing::MakeSpec(job, "1f1b", 1, layers);
  auto s = testing::BuildSchedule(run.spec, "1f1b", 1, layers,
                                  testing::MixedPolicy(2, job.microbatches));
  ASSERT_TRUE(s.ok()) << s.status();
  run.schedule = *s;
  int offloads = 0;
  for (const auto& list : run.schedule.devices) {
    for (const Action& a : list) offloads += a.type == ActionType::kOffload;
  }
  ASSERT_GT(offloads, 0) << "the policy must offload for this test to bite";
  const auto sync = testing::RunPipeline(run);
  auto pool = std::make_shared<PinnedPool>(PageableHostMemory(), 256 << 20);
  run.make_copier = [pool]() -> std::shared_ptr<HostCopier> {
    DeferredCopier::Options o;
    o.delay_us = 300;
    o.pool = pool;
    return std::make_shared<DeferredCopier>(o);
  };
  const auto late = testing::RunPipeline(run);
  ASSERT_EQ(sync.size(), late.size());
  int64_t reloaded_late = 0;
  for (size_t r = 0; r < sync.size(); ++r) {
    ASSERT_TRUE(sync[r].status.ok()) << sync[r].status;
    ASSERT_TRUE(late[r].status.ok()) << late[r].status;
    ASSERT_EQ(sync[r].reports.size(), late[r].reports.size());
    for (size_t i = 0; i < sync[r].reports.size(); ++i) {
      EXPECT_EQ(sync[r].reports[i].loss(), late[r].reports[i].loss());
      EXPECT_EQ(sync[r].reports[i].grad_norm(), late[r].reports[i].grad_norm());
      // Late copies never make the ledger's peak smaller than the
      // synchronous run's: bytes leave only once their copy has landed.
      EXPECT_GE(late[r].reports[i].device().peak_activation_bytes(),
                sync[r].reports[i].device().peak_activation_bytes());
      reloaded_late += late[r].reports[i].device().reload_copied_bytes();
    }
  }
  // Some offloads landed and came back through the asynchronous reload
  // (others were still in flight at their RELOAD and stayed on the device).
  EXPECT_GT(reloaded_late, 0);
  EXPECT_GT(pool->Stats().allocations, 0);
  EXPECT_EQ(pool->Stats().in_use_bytes, 0);
}

// The pool: a bound on what it holds, reuse across rounds, best fit within
// twice the request, and fallbacks counted.
TEST(PinnedPoolTest, ReusesBlocksStaysUnderItsLimitAndCountsFallbacks) {
  int system_allocs = 0;
  HostMemorySource src = PageableHostMemory();
  auto counting = src;
  counting.alloc = [&](size_t n) {
    ++system_allocs;
    return src.alloc(n);
  };
  const size_t g = PinnedPool::kGranule;
  PinnedPool pool(counting, static_cast<int64_t>(4 * g));
  for (int round = 0; round < 3; ++round) {
    void* a = pool.Allocate(g);      // one granule
    void* b = pool.Allocate(g + 1);  // rounds up to two
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    pool.Free(a);
    pool.Free(b);
  }
  EXPECT_EQ(system_allocs, 2);  // reused in rounds two and three
  PinnedPoolStats s = pool.Stats();
  EXPECT_EQ(s.reserved_bytes, static_cast<int64_t>(3 * g));
  EXPECT_EQ(s.in_use_bytes, 0);
  EXPECT_EQ(s.peak_in_use_bytes, static_cast<int64_t>(3 * g));
  // Best fit: the small request takes the one-granule block, the large one
  // the two-granule block; nothing new is taken from the system.
  void* small = pool.Allocate(100);
  void* big = pool.Allocate(2 * g);
  EXPECT_EQ(system_allocs, 2);
  // Past the limit: cached blocks are freed first, then the pool refuses.
  void* huge = pool.Allocate(2 * g);  // needs 2 more, only 1 granule free
  EXPECT_EQ(huge, nullptr);
  s = pool.Stats();
  EXPECT_EQ(s.fallback_allocations, 1);
  EXPECT_EQ(s.fallback_bytes, static_cast<int64_t>(2 * g));
  EXPECT_LE(s.reserved_bytes, s.limit_bytes);
  pool.Free(small);
  pool.Free(big);
  void* three = pool.Allocate(3 * g);  // frees cached blocks to make room
  ASSERT_NE(three, nullptr);
  EXPECT_LE(pool.Stats().reserved_bytes, pool.Stats().limit_bytes);
  pool.Free(three);
  pool.Trim();
  EXPECT_EQ(pool.Stats().reserved_bytes, 0);
}

TEST(PinnedPoolTest, PooledTensorsReturnTheirBlockAndFallBackToPageable) {
  auto pool = std::make_shared<PinnedPool>(PageableHostMemory(),
                                           static_cast<int64_t>(PinnedPool::kGranule));
  at::Tensor a = EmptyPooledHostTensor(pool, {256}, at::kFloat);
  EXPECT_EQ(pool->Stats().in_use_bytes, static_cast<int64_t>(PinnedPool::kGranule));
  at::Tensor b = EmptyPooledHostTensor(pool, {256}, at::kFloat);  // no room
  EXPECT_EQ(pool->Stats().fallback_allocations, 1);
  b.fill_(2);
  a.fill_(1);
  EXPECT_EQ(a.sum().item<float>(), 256);
  a = at::Tensor();
  EXPECT_EQ(pool->Stats().in_use_bytes, 0);
}

}  // namespace
}  // namespace chronos::worker
