// The default JobStore: one SQLite database file (<data-dir>/chronos.db) in
// WAL mode, so that job records survive coordinator restarts and crashes.
// Tables: jobs (one row per job: name, uid, generation, resource_version,
// state and the metadata/spec/status protos as bytes), events (job,
// sequence, proto bytes), iterations (job, iteration, sequence, attempt,
// proto bytes: one row per iteration, so a redone iteration replaces the
// earlier record), meta (store-wide counters). Schema version 2 (PRAGMA
// user_version); a version 1 store is migrated when opened, keeping a copy
// as it was (<path>.schema1) for an older coordinator.
// Every write is one transaction. One connection serialized by a mutex:
// the coordinator's write rate (a few rows per training iteration) is far
// below what that sustains, and it keeps SQLite's threading rules out of
// the picture. Thread-safe.
#ifndef CHRONOS_COORDINATOR_SQLITE_JOB_STORE_H_
#define CHRONOS_COORDINATOR_SQLITE_JOB_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"

struct sqlite3;

namespace chronos::coordinator {

class SqliteJobStore : public JobStore {
 public:
  // Opens (creating if needed) `path` (mode 0600: job specs and history are
  // the cluster's business), sets WAL mode and creates the schema.
  // kFailedPrecondition, naming the file and the way out, when it was
  // written by a newer schema, when it is an empty file where a store
  // should be, or when SQLite's integrity check finds it damaged (a store
  // served half-read would lose jobs without a word); kUnavailable when it
  // cannot be opened (e.g. locked by another process). A fresh store gets a
  // last good copy at once (Backup).
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const std::string& path);
  // Open(<dir>/chronos.db), creating `dir` if needed.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> OpenInDirectory(const std::string& dir);
  ~SqliteJobStore() override;

  absl::StatusOr<StoreSnapshot> Load() override;
  // VACUUM INTO <path>.backup.tmp, then an atomic rename to <path>.backup
  // (mode 0600). Restore: stop the coordinator, copy the backup over
  // <path> (removing <path>-wal and <path>-shm), start it (docs/deployment.md).
  absl::Status Backup() override;
  static std::string BackupPath(const std::string& path) { return path + ".backup"; }
  absl::Status Create(const JobWrite& write) override;
  absl::Status Update(const JobWrite& write) override;
  absl::Status Delete(const std::string& name, int64_t resource_version) override;
  absl::StatusOr<std::vector<v1::JobEvent>> Events(const std::string& name, int64_t after_sequence,
                                                   int limit) override;
  absl::StatusOr<std::vector<v1::IterationRecord>> Iterations(const std::string& name,
                                                              int64_t after_sequence,
                                                              int limit) override;

 private:
  SqliteJobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Write(const JobWrite& write, bool create);
  // Schema 1 (iterations keyed by sequence, redone iterations stored
  // twice) -> 2, in one transaction.
  absl::Status MigrateFrom1();

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_SQLITE_JOB_STORE_H_
