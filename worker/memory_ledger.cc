#include "worker/memory_ledger.h"

#include <algorithm>

namespace chronos::worker {

void MemoryLedger::AddResident(int64_t bytes) {
  absl::MutexLock l(&mu_);
  s_.resident_bytes += bytes;
  s_.peak_resident_bytes = std::max(s_.peak_resident_bytes, s_.resident_bytes);
}

void MemoryLedger::MoveToHost(int64_t bytes) {
  absl::MutexLock l(&mu_);
  s_.resident_bytes -= bytes;
  s_.offloaded_bytes += bytes;
  s_.offloaded_total_bytes += bytes;
  s_.peak_offloaded_bytes = std::max(s_.peak_offloaded_bytes, s_.offloaded_bytes);
}

void MemoryLedger::MoveToDevice(int64_t bytes) {
  absl::MutexLock l(&mu_);
  s_.resident_bytes += bytes;
  s_.offloaded_bytes -= bytes;
  s_.reloaded_total_bytes += bytes;
  s_.peak_resident_bytes = std::max(s_.peak_resident_bytes, s_.resident_bytes);
}

void MemoryLedger::DropOffloaded(int64_t bytes) {
  absl::MutexLock l(&mu_);
  s_.offloaded_bytes -= bytes;
}

void MemoryLedger::ResetPeaks() {
  absl::MutexLock l(&mu_);
  s_.peak_resident_bytes = s_.resident_bytes;
  s_.peak_offloaded_bytes = s_.offloaded_bytes;
}

LedgerSnapshot MemoryLedger::Snapshot() const {
  absl::MutexLock l(&mu_);
  return s_;
}

}  // namespace chronos::worker
