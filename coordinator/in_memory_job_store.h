// A JobStore in process memory, for tests and for a coordinator started
// without --data-dir. Same semantics as SqliteJobStore, nothing survives
// the process. Thread-safe.
#ifndef CHRONOS_COORDINATOR_IN_MEMORY_JOB_STORE_H_
#define CHRONOS_COORDINATOR_IN_MEMORY_JOB_STORE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"

namespace chronos::coordinator {

class InMemoryJobStore : public JobStore {
 public:
  absl::StatusOr<StoreSnapshot> Load() override;
  absl::Status Create(const JobWrite& write) override;
  absl::Status Update(const JobWrite& write) override;
  absl::Status Delete(const std::string& name, int64_t resource_version) override;
  absl::StatusOr<std::vector<v1::JobEvent>> Events(const std::string& name, int64_t after_sequence,
                                                   int limit) override;
  absl::StatusOr<std::vector<v1::IterationRecord>> Iterations(const std::string& name,
                                                              int64_t after_sequence,
                                                              int limit) override;

 private:
  struct Entry {
    int64_t order = 0;
    v1::Job job;
    std::map<int64_t, v1::JobEvent> events;             // by sequence
    std::map<int64_t, v1::IterationRecord> iterations;  // by sequence
    // iteration -> sequence: one record per iteration; a redone iteration
    // replaces the earlier record.
    std::map<int64_t, int64_t> iteration_sequence;
  };
  absl::Status Append(const JobWrite& write, Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<std::string, Entry> jobs_ ABSL_GUARDED_BY(mu_);
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t resource_version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_IN_MEMORY_JOB_STORE_H_
