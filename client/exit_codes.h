// chronosctl's exit codes and how statuses map onto them. Scripts branch on
// these numbers (docs/cli.md lists them), so they are part of the interface:
// add new ones, never renumber. Pure functions; any thread.
#ifndef CHRONOS_CLIENT_EXIT_CODES_H_
#define CHRONOS_CLIENT_EXIT_CODES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "chronos/v1/job.pb.h"

namespace chronos::client {

enum ExitCode : int {
  kExitOk = 0,               // success; a waited-for job SUCCEEDED
  kExitJobFailed = 1,        // a waited-for job FAILED or was CANCELLED
  kExitUsage = 2,            // bad command line: unknown flag, bad value
  kExitInvalidSpec = 3,      // INVALID_ARGUMENT: the job spec (or a request) is invalid
  kExitNotFound = 4,         // NOT_FOUND: no such job, worker or file
  kExitUnauthenticated = 5,  // UNAUTHENTICATED / PERMISSION_DENIED
  kExitUnavailable = 6,      // UNAVAILABLE / DEADLINE_EXCEEDED: server unreachable
  kExitConflict = 7,         // ALREADY_EXISTS / ABORTED / FAILED_PRECONDITION
  kExitInternal = 10,        // anything else the server or client got wrong
  kExitInterrupted = 130,    // stopped by SIGINT/SIGTERM (128 + SIGINT, as shells do)
};

// The exit code for a failed operation. A status made by UsageError maps to
// kExitUsage even though its code is kInvalidArgument: a mistyped flag and
// an invalid job spec need different reactions from a script.
int ExitCodeForStatus(const absl::Status& status);

// The exit code a command that waited for a job returns: 0 for SUCCEEDED,
// 1 for FAILED and CANCELLED; kExitInternal for a non-terminal state (the
// caller stopped waiting for another reason).
int ExitCodeForJobState(v1::JobState state);

// kInvalidArgument tagged as a command-line mistake (see ExitCodeForStatus).
// The message should name the flag: "--output must be one of ...".
absl::Status UsageError(absl::string_view message);
bool IsUsageError(const absl::Status& status);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_EXIT_CODES_H_
