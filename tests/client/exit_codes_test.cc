#include "client/exit_codes.h"

#include "gtest/gtest.h"

namespace chronos::client {
namespace {

TEST(ExitCodesTest, StatusCodesMapToDocumentedExitCodes) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::OutOfRangeError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("x")), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::UnauthenticatedError("x")), 5);
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("x")), 5);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("x")), 6);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("x")), 6);
  EXPECT_EQ(ExitCodeForStatus(absl::AlreadyExistsError("x")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::AbortedError("x")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::FailedPreconditionError("x")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::InternalError("x")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::UnknownError("x")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::UnimplementedError("x")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::ResourceExhaustedError("x")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::DataLossError("x")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::CancelledError("x")), 130);
}

TEST(ExitCodesTest, UsageErrorIsTwoThoughItsCodeIsInvalidArgument) {
  absl::Status s = UsageError("--output must be one of ...");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsUsageError(s));
  EXPECT_FALSE(IsUsageError(absl::InvalidArgumentError("model.layers must be >= 1")));
  EXPECT_EQ(ExitCodeForStatus(s), 2);
}

TEST(ExitCodesTest, JobOutcomes) {
  EXPECT_EQ(ExitCodeForJobState(v1::JOB_STATE_SUCCEEDED), 0);
  EXPECT_EQ(ExitCodeForJobState(v1::JOB_STATE_FAILED), 1);
  EXPECT_EQ(ExitCodeForJobState(v1::JOB_STATE_CANCELLED), 1);
  EXPECT_EQ(ExitCodeForJobState(v1::JOB_STATE_RUNNING), 10);
}

}  // namespace
}  // namespace chronos::client
