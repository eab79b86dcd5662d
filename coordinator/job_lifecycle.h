// The job state machine as pure functions over v1::JobStatus:
//
//   PLANNING ──► PENDING ──► RUNNING ──► SUCCEEDED
//      │           │          │  ▲
//      │           │          ▼  │
//      │           │      RECOVERING   (a worker died or faulted; reserved for
//      │           │          │         restart-from-checkpoint, see
//      ▼           ▼          ▼         JobController::FailAttempt)
//   FAILED / CANCELLED  ◄── from any non-terminal state
//
// PLANNING: stored at submission while the background planner makes the
// plan (JobController's planning). Kubernetes-style conditions (Planned,
// Admitted, Running, Recovering, Succeeded, Failed, Cancelled) follow the
// state; each keeps the time it last changed.
// No clock, no I/O; any thread.
#ifndef CHRONOS_COORDINATOR_JOB_LIFECYCLE_H_
#define CHRONOS_COORDINATOR_JOB_LIFECYCLE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "chronos/v1/job.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace chronos::coordinator {

bool IsTerminal(v1::JobState state);
bool CanTransition(v1::JobState from, v1::JobState to);
// "PENDING", "RUNNING", ... (the enum name without JOB_STATE_).
std::string JobStateName(v1::JobState state);

// Moves `status` to `to`, updating conditions, message and start/completion
// times. kFailedPrecondition (naming both states) if the move is not allowed.
absl::Status ApplyTransition(v1::JobStatus* status, v1::JobState to, absl::string_view reason,
                             absl::string_view message, absl::Time now);

// Sets condition `type` (adding it if absent); the transition time changes
// only when the value does.
void SetCondition(v1::JobStatus* status, absl::string_view type, bool value,
                  absl::string_view reason, absl::string_view message, absl::Time now);

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_JOB_LIFECYCLE_H_
