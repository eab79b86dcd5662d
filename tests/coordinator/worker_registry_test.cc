#include "coordinator/worker_registry.h"

#include <gtest/gtest.h>

namespace chronos::coordinator {
namespace {

v1::WorkerInfo Info(const std::string& name) {
  v1::WorkerInfo info;
  info.set_name(name);
  info.set_device("cpu");
  return info;
}

class WorkerRegistryTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  WorkerRegistry registry_{&clock_, absl::Seconds(5), 3};
};

TEST_F(WorkerRegistryTest, DeadAfterMissedHeartbeatsOnTheInjectedClock) {
  auto reg = registry_.Register(Info("w0"), "");
  ASSERT_TRUE(reg.ok()) << reg.status();
  const std::string id = reg->worker_id;
  EXPECT_EQ(id.rfind("w0-", 0), 0u) << id;
  clock_.Advance(absl::Seconds(14));
  EXPECT_TRUE(registry_.ExpireDead().empty());
  EXPECT_TRUE(registry_.Heartbeat(id));
  clock_.Advance(absl::Seconds(15));  // exactly 3 intervals: still alive
  EXPECT_TRUE(registry_.ExpireDead().empty());
  clock_.Advance(absl::Milliseconds(1));
  auto dead = registry_.ExpireDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].first, id);
  EXPECT_EQ(registry_.StateOf(id), v1::WORKER_STATE_DEAD);
  EXPECT_FALSE(registry_.Heartbeat(id));
  EXPECT_EQ(registry_.Attach(id).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry_.Counts()[v1::WORKER_STATE_DEAD], 1);
  // Coming back with its id revives it, idle.
  ASSERT_TRUE(registry_.Register(Info("w0"), id).ok());
  EXPECT_EQ(registry_.StateOf(id), v1::WORKER_STATE_IDLE);
}

TEST_F(WorkerRegistryTest, ARestoredWorkersTimeoutRunsFromWhenTheCoordinatorListens) {
  // A restart reads the store at t = 0 and, after re-planning its jobs,
  // starts listening at t = 20 s: longer than the 15 s timeout.
  registry_.Restore("w0-1", WorkerBinding{"job", 1});
  registry_.Restore("w1-1", WorkerBinding{"job", 1});
  clock_.Advance(absl::Seconds(20));
  registry_.StartRestoredTimeouts();
  clock_.Advance(absl::Seconds(15));
  EXPECT_TRUE(registry_.ExpireDead().empty()) << "a full timeout from when it could be heard";
  EXPECT_EQ(registry_.StateOf("w0-1"), v1::WORKER_STATE_BUSY);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(registry_.ExpireDead().size(), 2u);
  // A worker heard from is no longer restored: a later call gives it no
  // more time.
  auto w2 = registry_.Register(Info("w2"), "");
  ASSERT_TRUE(w2.ok());
  clock_.Advance(absl::Seconds(10));
  registry_.StartRestoredTimeouts();
  clock_.Advance(absl::Seconds(5) + absl::Milliseconds(1));
  EXPECT_EQ(registry_.ExpireDead().size(), 1u);
  EXPECT_EQ(registry_.StateOf(w2->worker_id), v1::WORKER_STATE_DEAD);
}

TEST_F(WorkerRegistryTest, DeathReportsTheBinding) {
  const std::string id = registry_.Register(Info("w0"), "")->worker_id;
  registry_.Bind(id, WorkerBinding{"job", 2});
  EXPECT_EQ(registry_.StateOf(id), v1::WORKER_STATE_BUSY);
  clock_.Advance(absl::Seconds(16));
  auto dead = registry_.ExpireDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].second.job, "job");
  EXPECT_EQ(dead[0].second.attempt, 2);
}

TEST_F(WorkerRegistryTest, NewProcessUnderTheSameNameSupersedesTheOldOne) {
  const std::string old_id = registry_.Register(Info("pod-0"), "")->worker_id;
  registry_.Bind(old_id, WorkerBinding{"job", 1});
  auto reg = registry_.Register(Info("pod-0"), "");
  ASSERT_TRUE(reg.ok());
  EXPECT_NE(reg->worker_id, old_id);
  ASSERT_EQ(reg->superseded.size(), 1u);
  EXPECT_EQ(reg->superseded[0].first, old_id);
  EXPECT_EQ(registry_.StateOf(old_id), v1::WORKER_STATE_DEAD);
}

// The per-name state the ChronosWorkerDead alert reads: dead while no
// process holds the name, alive again as soon as one registers under it,
// though the old id stays dead until it is forgotten.
TEST_F(WorkerRegistryTest, StateByNameIsAliveOnceTheSameNameComesBack) {
  const std::string old_id = registry_.Register(Info("pod-0"), "")->worker_id;
  registry_.Register(Info("pod-1"), "");
  clock_.Advance(absl::Seconds(16));
  registry_.ExpireDead();
  EXPECT_EQ(registry_.StatesByName(),
            (std::map<std::string, v1::WorkerState>{{"pod-0", v1::WORKER_STATE_DEAD},
                                                    {"pod-1", v1::WORKER_STATE_DEAD}}));
  const std::string new_id = registry_.Register(Info("pod-0"), "")->worker_id;
  ASSERT_NE(new_id, old_id);
  EXPECT_EQ(registry_.StateOf(old_id), v1::WORKER_STATE_DEAD);
  EXPECT_EQ(registry_.StatesByName(),
            (std::map<std::string, v1::WorkerState>{{"pod-0", v1::WORKER_STATE_IDLE},
                                                    {"pod-1", v1::WORKER_STATE_DEAD}}));
  registry_.Bind(new_id, WorkerBinding{"job", 1});
  EXPECT_EQ(registry_.StatesByName().at("pod-0"), v1::WORKER_STATE_BUSY);
}

// Two live processes under one name (two workers on a host, neither given
// --name): the older one, coming back under its id, must not take the name
// back, or each would push the other out in turn for ever.
TEST_F(WorkerRegistryTest, SupersededWorkerCannotTakeItsNameBackFromALiveOne) {
  const std::string first = registry_.Register(Info("vm"), "")->worker_id;
  const std::string second = registry_.Register(Info("vm"), "")->worker_id;
  ASSERT_EQ(registry_.StateOf(first), v1::WORKER_STATE_DEAD);
  auto again = registry_.Register(Info("vm"), first);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_NE(again.status().message().find("--name"), std::string::npos);
  EXPECT_NE(again.status().message().find(second), std::string::npos);
  EXPECT_EQ(registry_.StateOf(second), v1::WORKER_STATE_IDLE);
  EXPECT_EQ(registry_.StateOf(first), v1::WORKER_STATE_DEAD);
  // Once the name's holder is gone, the first comes back as before.
  clock_.Advance(absl::Seconds(16));
  registry_.ExpireDead();
  ASSERT_EQ(registry_.StateOf(second), v1::WORKER_STATE_DEAD);
  auto back = registry_.Register(Info("vm"), first);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(registry_.StateOf(first), v1::WORKER_STATE_IDLE);
}

TEST_F(WorkerRegistryTest, UnknownPreviousIdIsAdoptedAfterACoordinatorRestart) {
  auto reg = registry_.Register(Info("pod-1"), "pod-1-abcdef");
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->worker_id, "pod-1-abcdef");
  EXPECT_TRUE(registry_.Heartbeat("pod-1-abcdef"));
}

TEST_F(WorkerRegistryTest, AttachReplacesTheOlderStreamAndOnlyAttachedIdleCount) {
  const std::string a = registry_.Register(Info("a"), "")->worker_id;
  const std::string b = registry_.Register(Info("b"), "")->worker_id;
  EXPECT_TRUE(registry_.IdleAttached().empty());
  auto q1 = registry_.Attach(a);
  ASSERT_TRUE(q1.ok());
  auto q2 = registry_.Attach(a);
  ASSERT_TRUE(q2.ok());
  EXPECT_TRUE((*q1)->closed());
  EXPECT_FALSE((*q2)->closed());
  ASSERT_TRUE(registry_.Attach(b).ok());
  EXPECT_EQ(registry_.IdleAttached(), (std::vector<std::string>{a, b}));
  registry_.Detach(a, q1->get());  // stale stream: no effect
  EXPECT_EQ(registry_.IdleAttached().size(), 2u);
  registry_.Detach(a, q2->get());
  EXPECT_EQ(registry_.IdleAttached(), (std::vector<std::string>{b}));
  EXPECT_FALSE(registry_.Send(a, v1::WorkerCommand()));
  EXPECT_TRUE(registry_.Send(b, v1::WorkerCommand()));
  EXPECT_EQ(registry_.Attach("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WorkerRegistryTest, RejectsBadInfo) {
  EXPECT_EQ(registry_.Register(Info(std::string(300, 'x')), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::WorkerInfo info = Info("x");
  info.set_hbm_bytes(-1);
  EXPECT_EQ(registry_.Register(info, "").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace chronos::coordinator
