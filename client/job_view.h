// How jobs look to people: the rows of `get`/`list`, the text of
// `describe`, and the one-line progress of `watch` and `local run`.
// Pure functions; the caller passes the current time so output is
// reproducible in tests.
#ifndef CHRONOS_CLIENT_JOB_VIEW_H_
#define CHRONOS_CLIENT_JOB_VIEW_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chronos/v1/job.pb.h"
#include "client/output.h"

namespace chronos::client {

// "RUNNING" for JOB_STATE_RUNNING; "UNKNOWN" for UNSPECIFIED.
std::string JobStateName(v1::JobState state);
bool IsTerminal(v1::JobState state);
// "running", "RUNNING" or "JOB_STATE_RUNNING"; a UsageError naming --state.
absl::StatusOr<v1::JobState> ParseJobState(const std::string& text);

// Table (or wide table) of jobs; `now` for the AGE column.
void PrintJobTable(std::ostream& out, const std::vector<v1::Job>& jobs, bool wide, absl::Time now);

// The human `describe` page. Everything comes from the Job object; there is
// no credential in it to leak.
void PrintJobDescription(std::ostream& out, const v1::Job& job, absl::Time now);

// "iter 12/200  loss 2.3134  5.4k tok/s  0.41 s/it  offload 0.40  stage0 hbm 1.2 GiB act 300 MiB |
// ..."
std::string ProgressLine(const v1::IterationRecord& it, int64_t total_iterations);

// One line for an event: "Started: message".
std::string EventLine(const v1::JobEvent& event);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_JOB_VIEW_H_
