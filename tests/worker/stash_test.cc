// ActivationStash: ledger bytes on every change, and partial offload/reload
// moving exactly core/activation_layout's OffloadedBytes, bit-identically.
#include "worker/stash.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/activation_layout.h"
#include "worker/host_copier.h"
#include "worker/memory_ledger.h"

namespace chronos::worker {
namespace {

at::Tensor Make(const StashTensor& t, int64_t tokens, at::ScalarType act) {
  const int64_t n = t.elements_per_token * tokens;
  switch (t.dtype) {
    case StashDtype::kI64:
      return at::randint(1000, {tokens, t.elements_per_token}, at::kLong);
    case StashDtype::kF32:
      return at::randn({n}, at::kFloat).reshape({tokens, -1});
    case StashDtype::kAct:
      return at::randn({n}, at::kFloat).to(act).reshape({tokens, -1});
  }
  return {};
}

LayoutDims Dims(bool flash) {
  LayoutDims d;
  d.hidden = 16;
  d.heads = 2;
  d.ffn = 24;
  d.vocab = 32;
  d.seq_len = 7;  // odd sizes make fractions round
  d.flash = flash;
  return d;
}

TEST(ActivationStashTest, PutEraseAndReplaceKeepTheLedgerExact) {
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  stash.Put(0, 1, 2, "x", at::zeros({3, 5}, at::kFloat));
  stash.Put(0, 1, 2, "ids", at::zeros({3}, at::kLong));
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 3 * 5 * 4 + 3 * 8);
  EXPECT_TRUE(stash.Has(0, 1, 2, "x"));
  EXPECT_FALSE(stash.Has(0, 1, 3, "x"));
  stash.Put(0, 1, 2, "x", at::zeros({2}, at::kBFloat16));  // replaces
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 2 * 2 + 3 * 8);
  EXPECT_EQ(stash.size(), 2u);
  EXPECT_EQ(stash.ResidentBytes(0, 1), 2 * 2 + 3 * 8);
  stash.Erase(0, 1, 2, "x");
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 3 * 8);
  EXPECT_THROW(stash.Get(0, 1, 2, "x"), c10::Error);
  stash.Clear();
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
  EXPECT_EQ(ledger.Snapshot().peak_resident_bytes, 3 * 5 * 4 + 3 * 8);
}

TEST(ActivationStashTest, EraseChunkTouchesOnlyThatMicroBatchAndChunk) {
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  for (int mb : {0, 1}) {
    for (int chunk : {0, 1}) stash.Put(mb, chunk, 0, "x", at::ones({4}));
  }
  stash.Offload(1, 0, 0.5);
  stash.EraseChunk(1, 0);
  EXPECT_EQ(stash.size(), 3u);
  EXPECT_FALSE(stash.Has(1, 0, 0, "x"));
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 3 * 16);
  EXPECT_EQ(ledger.Snapshot().offloaded_bytes, 0);
}

class OffloadTest : public ::testing::TestWithParam<std::tuple<double, bool, bool>> {};

// Every tensor a layer, the head and the embedding save, at once.
TEST_P(OffloadTest, MovesExactlyTheLayoutsBytesAndReloadsBitIdentical) {
  const auto [fraction, flash, bf16] = GetParam();
  const at::ScalarType act = bf16 ? at::kBFloat16 : at::kFloat;
  const int64_t act_bytes = bf16 ? 2 : 4;
  const int64_t tokens = 3 * 7;
  at::manual_seed(1);
  MemoryLedger ledger;
  ActivationStash stash(&ledger);
  std::vector<StashTensor> all;
  std::vector<at::Tensor> originals;
  int unit = 0;
  for (UnitKind kind : {UnitKind::kEmbedding, UnitKind::kLayer, UnitKind::kHead}) {
    for (const StashTensor& t : ForwardStash(kind, Dims(flash))) {
      at::Tensor v = Make(t, tokens, act);
      if (t.name == "q") v = v.t();  // a non-contiguous entry
      stash.Put(2, 3, unit, t.name, v);
      all.push_back(t);
      originals.push_back(v.clone());
    }
    ++unit;
  }
  stash.Put(2, 4, 0, "x", at::ones({5}));  // another chunk: untouched
  const int64_t total = StashBytes(all, tokens, act_bytes);
  ASSERT_EQ(stash.ResidentBytes(2, 3), total);

  const int64_t expected = OffloadedBytes(all, tokens, act_bytes, fraction);
  EXPECT_EQ(stash.Offload(2, 3, fraction), expected);
  EXPECT_EQ(stash.IsOffloaded(2, 3), expected > 0);
  EXPECT_EQ(stash.ResidentBytes(2, 3), total - expected);
  LedgerSnapshot s = ledger.Snapshot();
  EXPECT_EQ(s.resident_bytes, total - expected + 5 * 4);
  EXPECT_EQ(s.offloaded_bytes, expected);
  EXPECT_EQ(s.offloaded_total_bytes, expected);
  if (expected > 0) {
    EXPECT_THROW(stash.Get(2, 3, 1, "x"), c10::Error);
  }

  EXPECT_EQ(stash.Reload(2, 3), expected);
  EXPECT_FALSE(stash.IsOffloaded(2, 3));
  s = ledger.Snapshot();
  EXPECT_EQ(s.resident_bytes, total + 5 * 4);
  EXPECT_EQ(s.offloaded_bytes, 0);
  EXPECT_EQ(s.reloaded_total_bytes, expected);
  size_t i = 0;
  unit = 0;
  for (UnitKind kind : {UnitKind::kEmbedding, UnitKind::kLayer, UnitKind::kHead}) {
    for (const StashTensor& t : ForwardStash(kind, Dims(flash))) {
      at::Tensor back = stash.Get(2, 3, unit, t.name);
      EXPECT_EQ(back.sizes(), originals[i].sizes()) << t.name;
      EXPECT_EQ(back.scalar_type(), originals[i].scalar_type()) << t.name;
      EXPECT_TRUE(at::equal(back, originals[i])) << t.name;
      ++i;
    }
    ++unit;
  }
}

INSTANTIATE_TEST_SUITE_P(Fractions, OffloadTest,
                         ::testing::Combine(::testing::Values(0.0, 0.3, 0.5, 1.0),
                                            ::testing::Bool(), ::testing::Bool()));

// Counts the copies (synchronous ones, like a CPU worker's).
class CountingCopier : public SyncHostCopier {
 public:
  PendingCopy StartToHost(const at::Tensor& src) override {
    ++to_host;
    return SyncHostCopier::StartToHost(src);
  }
  PendingCopy StartToDevice(const at::Tensor& host, c10::Device device) override {
    ++to_device;
    return SyncHostCopier::StartToDevice(host, device);
  }
  int to_host = 0;
  int to_device = 0;
};

TEST(ActivationStashTest, UsesTheCopierAndFreesTheOriginalStorage) {
  MemoryLedger ledger;
  CountingCopier copier;
  ActivationStash stash(&ledger, &copier);
  at::Tensor t = at::arange(10, at::kFloat);
  stash.Put(0, 0, 0, "x", t);
  stash.Put(0, 0, 0, "y", at::arange(3, at::kFloat));
  EXPECT_EQ(stash.Offload(0, 0, 0.5), (5 + 1) * 4);
  EXPECT_EQ(copier.to_host, 2);
  // The stash no longer references t's storage: only the caller's does.
  EXPECT_EQ(t.storage().use_count(), 1);
  // A second offload of an offloaded chunk moves nothing more.
  EXPECT_EQ(stash.Offload(0, 0, 1.0), 0);
  EXPECT_EQ(stash.Reload(0, 0), (5 + 1) * 4);
  EXPECT_EQ(copier.to_device, 2);
  EXPECT_TRUE(at::equal(stash.Get(0, 0, 0, "x"), t));
  stash.Erase(0, 0, 0, "x");
  stash.Erase(0, 0, 0, "y");
  EXPECT_EQ(ledger.Snapshot().resident_bytes, 0);
}

}  // namespace
}  // namespace chronos::worker
