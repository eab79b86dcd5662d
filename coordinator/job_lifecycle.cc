#include "coordinator/job_lifecycle.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chronos::coordinator {

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

bool CanTransition(v1::JobState from, v1::JobState to) {
  if (IsTerminal(from) || from == to) return false;
  switch (to) {
    case v1::JOB_STATE_PENDING:
      return from == v1::JOB_STATE_PLANNING;
    case v1::JOB_STATE_RUNNING:
      return from == v1::JOB_STATE_PENDING || from == v1::JOB_STATE_RECOVERING;
    case v1::JOB_STATE_RECOVERING:
    case v1::JOB_STATE_SUCCEEDED:
      return from == v1::JOB_STATE_RUNNING;
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
      return true;
    default:
      return false;
  }
}

std::string JobStateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return name.empty() ? absl::StrCat(static_cast<int>(state)) : name;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t seconds = nanos / 1000000000;
  int64_t rem = nanos % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

void SetCondition(v1::JobStatus* status, absl::string_view type, bool value,
                  absl::string_view reason, absl::string_view message, absl::Time now) {
  v1::Condition* c = nullptr;
  for (v1::Condition& existing : *status->mutable_conditions()) {
    if (existing.type() == type) c = &existing;
  }
  if (c == nullptr) {
    c = status->add_conditions();
    c->set_type(std::string(type));
    c->set_status(!value);  // forces the transition time below
  }
  if (c->status() != value) SetTimestamp(now, c->mutable_last_transition_time());
  c->set_status(value);
  c->set_reason(std::string(reason));
  c->set_message(std::string(message));
}

absl::Status ApplyTransition(v1::JobStatus* status, v1::JobState to, absl::string_view reason,
                             absl::string_view message, absl::Time now) {
  const v1::JobState from = status->state();
  if (!CanTransition(from, to)) {
    return absl::FailedPreconditionError(
        absl::StrCat("a ", JobStateName(from), " job cannot become ", JobStateName(to)));
  }
  status->set_state(to);
  status->set_message(std::string(message));
  switch (to) {
    case v1::JOB_STATE_PENDING:
      SetCondition(status, "Planned", true, reason, message, now);
      break;
    case v1::JOB_STATE_RUNNING:
      SetCondition(status, "Admitted", true, reason, message, now);
      SetCondition(status, "Running", true, reason, message, now);
      SetCondition(status, "Recovering", false, reason, message, now);
      if (!status->has_start_time()) SetTimestamp(now, status->mutable_start_time());
      break;
    case v1::JOB_STATE_RECOVERING:
      SetCondition(status, "Running", false, reason, message, now);
      SetCondition(status, "Recovering", true, reason, message, now);
      break;
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED: {
      for (v1::Condition& c : *status->mutable_conditions()) {
        if (c.type() == "Running" || c.type() == "Recovering") {
          if (c.status()) SetTimestamp(now, c.mutable_last_transition_time());
          c.set_status(false);
          c.set_reason(std::string(reason));
          c.set_message(std::string(message));
        }
      }
      const char* type = to == v1::JOB_STATE_SUCCEEDED ? "Succeeded"
                         : to == v1::JOB_STATE_FAILED  ? "Failed"
                                                       : "Cancelled";
      SetCondition(status, type, true, reason, message, now);
      SetTimestamp(now, status->mutable_completion_time());
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace chronos::coordinator
