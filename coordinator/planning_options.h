// How the coordinator plans submitted jobs in the background: the planner's
// threads, the longest one plan may take, and how many jobs may wait to be
// planned. Filled by main.cc (flags) or tests; read by JobController.
#ifndef CHRONOS_COORDINATOR_PLANNING_OPTIONS_H_
#define CHRONOS_COORDINATOR_PLANNING_OPTIONS_H_

#include "absl/time/time.h"

namespace chronos::coordinator {

struct PlanningOptions {
  // Threads that plan submitted jobs. One is enough for most clusters: a
  // plan already runs its candidates on every core. 0 plans each job inline
  // in the call that submitted it (tests that want submission and planning
  // in one deterministic step).
  int threads = 1;
  // Longest a plan may take, on the coordinator's clock; a job whose plan
  // takes longer fails with a message naming the fields that make it big.
  // Every re-plan (policy change, recovery, out-of-memory) is bounded the
  // same way.
  absl::Duration deadline = absl::Minutes(5);
  // Jobs that may wait in PLANNING at once; SubmitJob refuses more with
  // kUnavailable (retry later).
  int max_waiting = 64;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_PLANNING_OPTIONS_H_
