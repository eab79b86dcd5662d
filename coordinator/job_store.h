// Where the coordinator keeps jobs so that a restart loses none: the job
// object (metadata, spec, status) plus its history (events and iteration
// records, ordered by one per-job sequence). The JobController is the only
// writer; it keeps the current objects in memory and writes each change
// through, so reads of history (WatchJob, GetJob with events) come from
// here. Every method is atomic: a write that fails changed nothing.
// Implementations are thread-safe.
#ifndef CHRONOS_COORDINATOR_JOB_STORE_H_
#define CHRONOS_COORDINATOR_JOB_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"

namespace chronos::coordinator {

// One change to one job: the new object (its events/iterations fields are
// ignored) and history rows to append. An iteration record replaces the
// stored record of the same iteration (a redone iteration, after a recovery
// from a checkpoint; IterationRecord.attempt says which attempt ran it), so
// the history holds each iteration once. `resource_version` is the store-wide
// counter after this change; the store persists it so that versions never
// repeat across restarts, even when the newest job is deleted.
struct JobWrite {
  v1::Job job;
  std::vector<v1::JobEvent> events;
  std::vector<v1::IterationRecord> iterations;
  int64_t resource_version = 0;
};

struct StoredJob {
  v1::Job job;                // without events and iterations
  int64_t last_sequence = 0;  // highest event/iteration sequence
};

struct StoreSnapshot {
  std::vector<StoredJob> jobs;  // by creation order
  int64_t resource_version = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Everything, for startup.
  virtual absl::StatusOr<StoreSnapshot> Load() = 0;
  // Writes a consistent copy of the store beside it (the last good copy a
  // damaged store is restored from); a store without a file does nothing.
  virtual absl::Status Backup() { return absl::OkStatus(); }
  // kAlreadyExists when a job of that name is stored.
  virtual absl::Status Create(const JobWrite& write) = 0;
  // Replaces the object and appends the history rows. kNotFound when no job
  // of that name is stored; kAlreadyExists when a sequence repeats.
  virtual absl::Status Update(const JobWrite& write) = 0;
  // Removes the job and its history. kNotFound when absent.
  virtual absl::Status Delete(const std::string& name, int64_t resource_version) = 0;
  // History rows with sequence > after_sequence, in sequence order, at most
  // `limit` (<= 0: all). A replaced iteration record is gone from its old
  // place in that order and appears at its new sequence.
  virtual absl::StatusOr<std::vector<v1::JobEvent>> Events(const std::string& name,
                                                           int64_t after_sequence, int limit) = 0;
  virtual absl::StatusOr<std::vector<v1::IterationRecord>> Iterations(const std::string& name,
                                                                      int64_t after_sequence,
                                                                      int limit) = 0;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_JOB_STORE_H_
