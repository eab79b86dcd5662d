// The schedule validator. A schedule is pushed to workers only after it
// passes: every (micro-batch, chunk) computed exactly once per iteration, F
// before its backward, BI before BW, memory actions consistent with each F's
// policy, every send matched by one receive in the same order on its channel,
// and a replay of all devices together that proves the schedule cannot
// deadlock under the runtime's semantics (sends are asynchronous, receives
// block their consumer, OPTIM_STEP is a collective across devices).
// Errors name the device and the action index. Pure; any thread.
#ifndef CHRONOS_CORE_VALIDATOR_H_
#define CHRONOS_CORE_VALIDATOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/schedule.h"

namespace chronos {

struct ValidationError {
  int device = -1;
  int action = -1;  // index in the device's list, -1 if not tied to one
  std::string message;
  std::string ToString() const;
};

// All problems found (structural checks first; the deadlock replay only runs
// when the structure is sound).
std::vector<ValidationError> FindScheduleErrors(const Schedule& s);

// OK, or kInvalidArgument listing the first errors.
absl::Status ValidateSchedule(const Schedule& s);

}  // namespace chronos

#endif  // CHRONOS_CORE_VALIDATOR_H_
