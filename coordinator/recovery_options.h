// How the coordinator restarts jobs whose worker died or faulted: restart
// limit, back-off, how long to wait for the full pipeline width before
// re-planning onto fewer stages, and how much to shrink the HBM budget after
// an out-of-memory fault. Filled by main.cc (flags) or tests; read by
// JobController.
#ifndef CHRONOS_COORDINATOR_RECOVERY_OPTIONS_H_
#define CHRONOS_COORDINATOR_RECOVERY_OPTIONS_H_

#include "absl/time/time.h"

namespace chronos::coordinator {

// How jobs recover from a lost or faulty worker.
struct RecoveryOptions {
  // Restarts a job gets before a further fault fails it.
  int max_restarts = 3;
  // Wait before restart n (0-based): backoff * 2^n, at most max_backoff.
  // Lets a crashed pod come back and keeps a crash loop from spinning.
  absl::Duration backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  // How long a recovering job waits for its full pipeline width before it
  // is re-planned onto the workers that are left.
  absl::Duration wait_for_workers = absl::Seconds(10);
  // After an out-of-memory fault the next plan gets this share of the
  // budget the failed plan had.
  double oom_budget_factor = 0.8;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_RECOVERY_OPTIONS_H_
