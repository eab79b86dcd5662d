// The coordinator's view of time, injected so that liveness (heartbeat
// misses) can be tested by advancing a fake clock instead of sleeping.
// RealClock is the wall clock; FakeClock only moves when told to.
// Both are thread-safe.
#ifndef CHRONOS_COORDINATOR_CLOCK_H_
#define CHRONOS_COORDINATOR_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chronos::coordinator {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

// The process-wide wall clock; never destroyed.
Clock* RealClock();

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}
  absl::Time Now() override;
  void Advance(absl::Duration d);

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_CLOCK_H_
