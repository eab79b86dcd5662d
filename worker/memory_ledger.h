// Exact accounting of saved-activation bytes on one device: what the stash
// holds resident and what it has moved to host memory, with peaks per
// iteration and running copy totals. The stash calls it on every change.
// Thread-safe: the executor thread writes, the metrics thread reads.
#ifndef CHRONOS_WORKER_MEMORY_LEDGER_H_
#define CHRONOS_WORKER_MEMORY_LEDGER_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"

namespace chronos::worker {

struct LedgerSnapshot {
  int64_t resident_bytes = 0;
  int64_t offloaded_bytes = 0;
  int64_t peak_resident_bytes = 0;    // since the last ResetPeaks
  int64_t peak_offloaded_bytes = 0;   // since the last ResetPeaks
  int64_t offloaded_total_bytes = 0;  // copied to host since construction
  int64_t reloaded_total_bytes = 0;   // copied back since construction
};

class MemoryLedger {
 public:
  void AddResident(int64_t bytes);    // may be negative
  void MoveToHost(int64_t bytes);     // resident -> offloaded
  void MoveToDevice(int64_t bytes);   // offloaded -> resident
  void DropOffloaded(int64_t bytes);  // host copy freed without reload
  void ResetPeaks();                  // peaks restart from current values
  LedgerSnapshot Snapshot() const;

 private:
  mutable absl::Mutex mu_;
  LedgerSnapshot s_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MEMORY_LEDGER_H_
