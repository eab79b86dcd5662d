// The history replay of WatchJob (coordinator/job_watch.h): events and
// iteration records merged by sequence, in pages, never past what both
// kinds are known to hold; and the change feed's wake-ups.
#include "coordinator/job_watch.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "coordinator/in_memory_job_store.h"

namespace chronos::coordinator {
namespace {

TEST(JobWatchTest, HistoryIsMergedBySequenceAcrossFullPages) {
  InMemoryJobStore store;
  JobWrite w;
  w.job.mutable_metadata()->set_name("j");
  w.resource_version = 1;
  // Sequences 1..3*kHistoryPage: every third an event, the rest iterations.
  const int n = 3 * kHistoryPage;
  for (int seq = 1; seq <= n; ++seq) {
    if (seq % 3 == 0) {
      v1::JobEvent* e = &w.events.emplace_back();
      e->set_sequence(seq);
    } else {
      v1::IterationRecord* r = &w.iterations.emplace_back();
      r->set_sequence(seq);
      r->set_iteration(seq);
    }
  }
  ASSERT_TRUE(store.Create(w).ok());
  std::vector<int64_t> seen;
  int64_t sent = 0;
  int pages = 0;
  while (true) {
    absl::StatusOr<bool> full = SendHistoryPage(
        &store, "j", &sent,
        [&](const v1::JobUpdate& u) {
          seen.push_back(u.sequence());
          EXPECT_EQ(u.has_event(), u.sequence() % 3 == 0);
          return true;
        },
        [] { return false; });
    ASSERT_TRUE(full.ok()) << full.status();
    ++pages;
    if (!*full) break;
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_GT(pages, 2);
  EXPECT_EQ(sent, n);
  // A client that goes away ends the replay.
  sent = 0;
  EXPECT_EQ(
      SendHistoryPage(
          &store, "j", &sent, [](const v1::JobUpdate&) { return false; }, [] { return false; })
          .status()
          .code(),
      absl::StatusCode::kCancelled);
}

TEST(JobWatchTest, ChangeFeedWakesWaitersAndRefusesAfterShutdown) {
  ChangeFeed feed;
  absl::StatusOr<int64_t> seen = feed.Count();
  ASSERT_TRUE(seen.ok());
  std::thread notifier([&] { feed.Notify(); });
  feed.Wait(*seen, absl::Seconds(20));  // returns on the notification
  notifier.join();
  EXPECT_EQ(*feed.Count(), *seen + 1);
  feed.Wait(*seen, absl::Seconds(20));  // already moved: returns at once
  feed.Shutdown();
  EXPECT_EQ(feed.Count().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace chronos::coordinator
