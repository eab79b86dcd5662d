// GlooCommunicator with 2-4 ranks as threads of this process, meeting through
// an InMemoryKeyValueStore behind KvC10dStore (which these tests thereby
// check against Gloo's real use of a store). Also the in-memory store, the
// adapter and LoopbackCommunicator on their own.
#include "worker/comm/gloo_communicator.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "absl/synchronization/notification.h"
#include "worker/comm/in_memory_kv_store.h"
#include "worker/comm/kv_c10d_store.h"
#include "worker/comm/loopback_communicator.h"

namespace chronos::worker {
namespace {

using RankBody = std::function<void(ProcessGroupCommunicator&)>;

// Starts p*d ranks as threads, runs `body` on each, then a world barrier so
// no rank tears its groups down while a peer still uses them.
void RunRanks(int p, int d, const RankBody& body) {
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  c10::intrusive_ptr<c10d::Store> store = NewKvC10dStore(kv, absl::Seconds(60));
  const int n = p * d;
  std::vector<std::unique_ptr<ProcessGroupCommunicator>> comms(n);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < n; ++rank) {
    threads.emplace_back([&, rank] {
      GlooCommunicatorOptions o;
      o.world_rank = rank;
      o.pipeline = p;
      o.data_parallel = d;
      o.key_prefix = "test";
      o.timeout = absl::Seconds(60);
      auto comm = CreateGlooCommunicator(store, o);
      ASSERT_TRUE(comm.ok()) << comm.status();
      comms[rank] = std::move(*comm);
      body(*comms[rank]);
      EXPECT_TRUE(comms[rank]->Barrier(Group::kWorld).ok());
    });
  }
  for (std::thread& t : threads) t.join();
}

// A receive blocked on a peer that hung (SIGSTOP, a dead host) returns as
// soon as the attempt is stopped: Abort from another thread ends it at
// once instead of after the transport's timeout, and later calls fail fast.
TEST(GlooCommunicatorTest, AbortEndsABlockedReceiveAtOnce) {
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  c10::intrusive_ptr<c10d::Store> store = NewKvC10dStore(kv, absl::Seconds(60));
  std::vector<std::unique_ptr<ProcessGroupCommunicator>> comms(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      GlooCommunicatorOptions o;
      o.world_rank = rank;
      o.pipeline = 2;
      o.key_prefix = "abort";
      o.timeout = absl::Seconds(120);
      auto comm = CreateGlooCommunicator(store, o);
      ASSERT_TRUE(comm.ok()) << comm.status();
      comms[rank] = std::move(*comm);
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(comms[0] && comms[1]);
  at::Tensor buf = at::zeros({8});
  std::unique_ptr<Work> w = comms[1]->Recv(buf, /*peer=*/0, /*tag=*/7);  // never sent
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(200));  // the receive is blocked by then
    comms[1]->Abort();
  });
  const absl::Time start = absl::Now();
  const absl::Status s = w->Wait(absl::Seconds(120));
  stopper.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  const absl::Status again = comms[1]->Recv(buf, 0, 8)->Wait(absl::Seconds(120));
  EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable) << again;
  std::vector<at::Tensor> t{buf};
  EXPECT_EQ(comms[1]->AllReduceSum(t, Group::kPipeline).code(), absl::StatusCode::kUnavailable);
}

TEST(GlooCommunicatorTest, SendRecvIsExact) {
  const at::Tensor payload = at::randn({257, 3});
  RunRanks(2, 1, [&](ProcessGroupCommunicator& c) {
    if (c.device() == 0) {
      EXPECT_TRUE(c.Send(payload, 1, 7)->Wait(absl::Seconds(30)).ok());
    } else {
      at::Tensor got = at::zeros({257, 3});
      auto w = c.Recv(got, 0, 7);
      ASSERT_TRUE(w->Wait(absl::Seconds(30)).ok());
      EXPECT_TRUE(w->IsCompleted());
      EXPECT_TRUE(at::equal(got, payload));
    }
  });
}

TEST(GlooCommunicatorTest, OutOfOrderTagsAreMatchedByTag) {
  RunRanks(2, 1, [&](ProcessGroupCommunicator& c) {
    if (c.device() == 0) {
      // Both in flight before either is awaited.
      auto a = c.Send(at::full({16}, 1.0), 1, 1);
      auto b = c.Send(at::full({16}, 2.0), 1, 2);
      EXPECT_TRUE(a->Wait(absl::Seconds(30)).ok());
      EXPECT_TRUE(b->Wait(absl::Seconds(30)).ok());
    } else {
      at::Tensor two = at::zeros({16});
      at::Tensor one = at::zeros({16});
      ASSERT_TRUE(c.Recv(two, 0, 2)->Wait(absl::Seconds(30)).ok());
      ASSERT_TRUE(c.Recv(one, 0, 1)->Wait(absl::Seconds(30)).ok());
      EXPECT_TRUE(at::equal(two, at::full({16}, 2.0)));
      EXPECT_TRUE(at::equal(one, at::full({16}, 1.0)));
    }
  });
}

TEST(GlooCommunicatorTest, SendRecvAddressesPipelineDevicesOfOwnReplica) {
  // p=2, d=2: device 0 of each replica sends its replica id to device 1.
  RunRanks(2, 2, [&](ProcessGroupCommunicator& c) {
    if (c.device() == 0) {
      at::Tensor t = at::full({4}, static_cast<double>(c.data_rank()));
      EXPECT_TRUE(c.Send(t, 1, 0)->Wait(absl::Seconds(30)).ok());
    } else {
      at::Tensor t = at::full({4}, -1.0);
      ASSERT_TRUE(c.Recv(t, 0, 0)->Wait(absl::Seconds(30)).ok());
      EXPECT_TRUE(at::equal(t, at::full({4}, static_cast<double>(c.data_rank()))));
    }
  });
}

TEST(GlooCommunicatorTest, AllReduceSumsOverEachGroup) {
  // World rank r contributes r + 1. p=2, d=2: replicas {0,1} {2,3};
  // data groups {0,2} {1,3}.
  RunRanks(2, 2, [&](ProcessGroupCommunicator& c) {
    const int r = c.world_rank();
    const double mine = r + 1;
    auto sum_over = [&](Group g) {
      std::vector<at::Tensor> ts{at::full({3}, mine)};
      EXPECT_TRUE(c.AllReduceSum(ts, g).ok());
      return ts[0][0].item<double>();
    };
    EXPECT_EQ(sum_over(Group::kWorld), 10.0);
    EXPECT_EQ(sum_over(Group::kPipeline), c.data_rank() == 0 ? 3.0 : 7.0);
    EXPECT_EQ(sum_over(Group::kData), c.device() == 0 ? 4.0 : 6.0);
  });
}

TEST(GlooCommunicatorTest, AllReduceSumsEachTensorSeparately) {
  // Mixed dtypes and a non-contiguous view go through the flattening path.
  RunRanks(2, 1, [&](ProcessGroupCommunicator& c) {
    const double k = c.world_rank() + 1;  // 1, 2 -> sums are 3x
    at::Tensor base = at::arange(6, at::kFloat).reshape({2, 3}).mul(k);
    std::vector<at::Tensor> ts{base.t(), at::full({5}, k, at::kDouble),
                               at::full({2}, 10 * k, at::kFloat)};
    ASSERT_TRUE(c.AllReduceSum(ts, Group::kWorld).ok());
    EXPECT_TRUE(at::equal(ts[0], at::arange(6, at::kFloat).reshape({2, 3}).t() * 3));
    EXPECT_TRUE(at::equal(ts[1], at::full({5}, 3.0, at::kDouble)));
    EXPECT_TRUE(at::equal(ts[2], at::full({2}, 30.0, at::kFloat)));
  });
}

TEST(GlooCommunicatorTest, BarrierWaitsForEveryMember) {
  std::atomic<int> arrived{0};
  RunRanks(2, 2, [&](ProcessGroupCommunicator& c) {
    arrived.fetch_add(1);
    ASSERT_TRUE(c.Barrier(Group::kWorld).ok());
    EXPECT_EQ(arrived.load(), 4);
    EXPECT_TRUE(c.Barrier(Group::kPipeline).ok());
    EXPECT_TRUE(c.Barrier(Group::kData).ok());
  });
}

TEST(GlooCommunicatorTest, RecvWithNoSenderTimesOut) {
  RunRanks(2, 1, [&](ProcessGroupCommunicator& c) {
    if (c.device() != 1) return;
    at::Tensor t = at::zeros({8});
    auto w = c.Recv(t, 0, 99);
    absl::Status s = w->Wait(absl::Milliseconds(100));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    // The result is final.
    EXPECT_EQ(w->Wait(absl::Milliseconds(1)).code(), absl::StatusCode::kDeadlineExceeded);
  });
}

TEST(GlooCommunicatorTest, RejectsBadPeerWithoutTouchingGloo) {
  RunRanks(2, 1, [&](ProcessGroupCommunicator& c) {
    at::Tensor t = at::zeros({2});
    EXPECT_EQ(c.Send(t, c.device(), 0)->Wait(absl::Seconds(1)).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.Recv(t, 2, 0)->Wait(absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.Send(t, 1 - c.device(), -1)->Wait(absl::Seconds(1)).code(),
              absl::StatusCode::kInvalidArgument);
  });
}

TEST(GlooCommunicatorTest, CreateRejectsRankOutsideJob) {
  auto store = NewKvC10dStore(std::make_shared<InMemoryKeyValueStore>(), absl::Seconds(1));
  GlooCommunicatorOptions o;
  o.world_rank = 4;
  o.pipeline = 2;
  o.data_parallel = 2;
  EXPECT_EQ(CreateGlooCommunicator(store, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InMemoryKvStoreTest, GetWaitsForSet) {
  InMemoryKeyValueStore kv;
  absl::Notification started;
  std::thread getter([&] {
    started.Notify();
    auto v = kv.Get("k", absl::Seconds(30));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, "hello");
  });
  started.WaitForNotification();
  ASSERT_TRUE(kv.Set("k", "hello").ok());
  getter.join();
}

TEST(InMemoryKvStoreTest, GetTimesOut) {
  InMemoryKeyValueStore kv;
  EXPECT_EQ(kv.Get("absent", absl::Milliseconds(10)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(InMemoryKvStoreTest, AddCheckDelete) {
  InMemoryKeyValueStore kv;
  EXPECT_EQ(*kv.Add("n", 2), 2);
  EXPECT_EQ(*kv.Add("n", 5), 7);
  EXPECT_EQ(*kv.Get("n", absl::ZeroDuration()), "7");
  ASSERT_TRUE(kv.Set("s", "x").ok());
  EXPECT_EQ(kv.Add("s", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(*kv.Check({"n", "s"}));
  EXPECT_FALSE(*kv.Check({"n", "t"}));
  EXPECT_EQ(*kv.NumKeys(), 2);
  EXPECT_TRUE(*kv.Delete("n"));
  EXPECT_FALSE(*kv.Delete("n"));
  EXPECT_FALSE(*kv.Check({"n"}));
}

TEST(KvC10dStoreTest, ForwardsToKeyValueStore) {
  auto kv = std::make_shared<InMemoryKeyValueStore>();
  auto store = NewKvC10dStore(kv, absl::Seconds(5));
  store->set("a", std::vector<uint8_t>{1, 2, 3});
  EXPECT_EQ(*kv->Get("a", absl::ZeroDuration()), std::string("\1\2\3"));
  EXPECT_EQ(store->get("a"), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(store->add("c", 4), 4);
  EXPECT_EQ(store->add("c", -1), 3);
  EXPECT_TRUE(store->check({"a", "c"}));
  EXPECT_EQ(store->getNumKeys(), 2);
  EXPECT_TRUE(store->deleteKey("a"));
  EXPECT_FALSE(store->check({"a"}));
  store->wait({"c"}, std::chrono::milliseconds(10));
}

TEST(KvC10dStoreTest, TimeoutsAndUnsupportedCallsThrowC10Errors) {
  auto store = NewKvC10dStore(std::make_shared<InMemoryKeyValueStore>(), absl::Milliseconds(10));
  EXPECT_THROW(store->get("absent"), c10::Error);
  EXPECT_THROW(store->wait({"absent"}), c10::Error);
  EXPECT_THROW(store->wait({"absent"}, std::chrono::milliseconds(5)), c10::Error);
  EXPECT_THROW(store->compareSet("k", std::vector<uint8_t>{}, std::vector<uint8_t>{1}), c10::Error);
}

TEST(LoopbackCommunicatorTest, RecvIsDeterministicPerTag) {
  LoopbackCommunicator c(3, 8);
  EXPECT_EQ(c.world_rank(), 3);
  EXPECT_EQ(c.world_size(), 8);
  at::Tensor a = at::zeros({4, 5});
  at::Tensor b = at::zeros({4, 5});
  at::Tensor other = at::zeros({4, 5});
  ASSERT_TRUE(c.Recv(a, 0, 11)->Wait(absl::ZeroDuration()).ok());
  ASSERT_TRUE(c.Recv(b, 1, 11)->Wait(absl::ZeroDuration()).ok());
  ASSERT_TRUE(c.Recv(other, 0, 12)->Wait(absl::ZeroDuration()).ok());
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, other));
  EXPECT_GT(a.abs().sum().item<double>(), 0.0);
  at::Tensor ids = at::zeros({3}, at::kLong);
  ASSERT_TRUE(c.Recv(ids, 0, 1)->Wait(absl::ZeroDuration()).ok());
  EXPECT_LT(ids.max().item<int64_t>(), 1000);
  EXPECT_TRUE(c.Send(a, 1, 0)->IsCompleted());
  std::vector<at::Tensor> ts{a.clone()};
  ASSERT_TRUE(c.AllReduceSum(ts, Group::kWorld).ok());
  EXPECT_TRUE(at::equal(ts[0], a));
  EXPECT_TRUE(c.Barrier(Group::kData).ok());
}

}  // namespace
}  // namespace chronos::worker
