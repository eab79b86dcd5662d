#include "coordinator/kv_store.h"

#include <gtest/gtest.h>

#include <thread>

namespace chronos::coordinator {
namespace {

const std::string kScope = StorePrefix("job", 1);

TEST(KvStoreTest, PrefixNamesJobAndAttempt) {
  EXPECT_EQ(StorePrefix("llama", 3), "jobs/llama/attempt-3/");
}

TEST(KvStoreTest, KeysOutsideAnOpenScopeAreRefused) {
  KvStore kv;
  EXPECT_EQ(kv.Set("jobs/job/attempt-1/x", "v").code(), absl::StatusCode::kFailedPrecondition);
  kv.OpenScope(kScope);
  EXPECT_TRUE(kv.Set(kScope + "x", "v").ok());
  EXPECT_EQ(kv.Set("jobs/job/attempt-2/x", "v").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(kv.Set(kScope, "v").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(kv.Set("", "v").code(), absl::StatusCode::kInvalidArgument);
  // A similar name is a different job.
  kv.OpenScope(StorePrefix("job-b", 1));
  EXPECT_EQ(kv.Check({kScope + "x"}).value(), true);
  EXPECT_EQ(kv.Check({StorePrefix("job-b", 1) + "x"}).value(), false);
}

TEST(KvStoreTest, SetGetCheckDelete) {
  KvStore kv;
  kv.OpenScope(kScope);
  ASSERT_TRUE(kv.Set(kScope + "a", "1").ok());
  EXPECT_EQ(kv.Get(kScope + "a", absl::ZeroDuration(), nullptr).value(), "1");
  ASSERT_TRUE(kv.Set(kScope + "a", "2").ok());
  EXPECT_EQ(kv.Get(kScope + "a", absl::ZeroDuration(), nullptr).value(), "2");
  EXPECT_TRUE(kv.Check({}).value());
  EXPECT_FALSE(kv.Check({kScope + "a", kScope + "b"}).value());
  ASSERT_TRUE(kv.Set(kScope + "b", "").ok());
  EXPECT_TRUE(kv.Check({kScope + "a", kScope + "b"}).value());
  EXPECT_TRUE(kv.Delete(kScope + "a").value());
  EXPECT_FALSE(kv.Delete(kScope + "a").value());
  EXPECT_EQ(kv.size(), 1);
}

TEST(KvStoreTest, AddKeepsADecimalCounter) {
  KvStore kv;
  kv.OpenScope(kScope);
  EXPECT_EQ(kv.Add(kScope + "n", 1).value(), 1);
  EXPECT_EQ(kv.Add(kScope + "n", 5).value(), 6);
  EXPECT_EQ(kv.Add(kScope + "n", -2).value(), 4);
  EXPECT_EQ(kv.Get(kScope + "n", absl::ZeroDuration(), nullptr).value(), "4");
  ASSERT_TRUE(kv.Set(kScope + "s", "text").ok());
  EXPECT_EQ(kv.Add(kScope + "s", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvStoreTest, GetWaitsForTheKey) {
  KvStore kv;
  kv.OpenScope(kScope);
  absl::StatusOr<std::string> got;
  std::thread waiter(
      [&] { got = kv.Get(kScope + "addr", absl::Seconds(30), [] { return false; }); });
  ASSERT_TRUE(kv.Set(kScope + "addr", "10.0.0.1:1234").ok());
  waiter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "10.0.0.1:1234");
}

TEST(KvStoreTest, GetTimesOutAndHonoursCancellation) {
  KvStore kv;
  kv.OpenScope(kScope);
  EXPECT_EQ(kv.Get(kScope + "never", absl::Milliseconds(30), nullptr).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(kv.Get(
                  kScope + "never", absl::Seconds(30), [] { return true; }, absl::Milliseconds(5))
                .status()
                .code(),
            absl::StatusCode::kCancelled);
}

TEST(KvStoreTest, ClosingTheScopeDropsKeysAndEndsWaits) {
  KvStore kv;
  kv.OpenScope(kScope);
  ASSERT_TRUE(kv.Set(kScope + "a", "1").ok());
  absl::StatusOr<std::string> got;
  std::thread waiter(
      [&] { got = kv.Get(kScope + "never", absl::Seconds(30), [] { return false; }); });
  kv.CloseScope(kScope);
  waiter.join();
  // Either the waiter saw the scope close, or it started after: both say
  // the attempt is over.
  EXPECT_TRUE(got.status().code() == absl::StatusCode::kAborted ||
              got.status().code() == absl::StatusCode::kFailedPrecondition)
      << got.status();
  EXPECT_EQ(kv.size(), 0);
  EXPECT_FALSE(kv.IsScopeOpen(kScope));
  kv.OpenScope(kScope);  // a new attempt with the same number starts empty
  EXPECT_FALSE(kv.Check({kScope + "a"}).value());
}

TEST(KvStoreTest, EnforcesLimits) {
  KvStore::Limits limits;
  limits.max_key_bytes = 64;
  limits.max_value_bytes = 8;
  limits.max_keys_per_scope = 2;
  KvStore kv(limits);
  kv.OpenScope(kScope);
  EXPECT_EQ(kv.Set(kScope + std::string(100, 'k'), "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.Set(kScope + "a", std::string(9, 'v')).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(kv.Set(kScope + "a", "1").ok());
  ASSERT_TRUE(kv.Set(kScope + "b", "1").ok());
  EXPECT_EQ(kv.Set(kScope + "c", "1").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(kv.Set(kScope + "a", "2").ok());  // overwriting is fine
}

}  // namespace
}  // namespace chronos::coordinator
