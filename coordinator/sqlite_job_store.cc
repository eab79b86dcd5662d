#include "coordinator/sqlite_job_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace chronos::coordinator {
namespace {

// 1: iterations keyed by sequence. 2: keyed by iteration (a redone
// iteration replaces the record of the attempt before), sequence unique.
constexpr int kSchemaVersion = 2;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  uid TEXT NOT NULL,
  generation INTEGER NOT NULL,
  resource_version INTEGER NOT NULL,
  state INTEGER NOT NULL,
  metadata BLOB NOT NULL,
  spec BLOB NOT NULL,
  status BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  job TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS iterations (
  job TEXT NOT NULL,
  iteration INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job, iteration)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS iterations_by_sequence ON iterations(job, sequence);
)sql";

// Schema 1 -> 2, in one transaction: one record per iteration, the newest
// attempt's (the latest of its records within that attempt), so a store
// that recorded redone iterations twice holds them once.
constexpr char kMigrateTo2[] = R"sql(
CREATE TABLE iterations_v2 (
  job TEXT NOT NULL,
  iteration INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job, iteration)
) WITHOUT ROWID;
INSERT INTO iterations_v2(job, iteration, sequence, attempt, proto)
  SELECT job, iteration, sequence, attempt, proto FROM iterations AS i
  WHERE NOT EXISTS (
    SELECT 1 FROM iterations AS j
    WHERE j.job = i.job AND j.iteration = i.iteration AND
          (j.attempt > i.attempt OR (j.attempt = i.attempt AND j.sequence > i.sequence)));
DROP TABLE iterations;
ALTER TABLE iterations_v2 RENAME TO iterations;
CREATE UNIQUE INDEX iterations_by_sequence ON iterations(job, sequence);
PRAGMA user_version=2;
)sql";

absl::Status SqlError(sqlite3* db, const char* what) {
  return absl::InternalError(absl::StrCat("job store: ", what, ": ", sqlite3_errmsg(db)));
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  int Step() { return sqlite3_step(stmt_); }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) {
    const void* data = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), n);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s =
        absl::InternalError(absl::StrCat("job store: ", err != nullptr ? err : "unknown error"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { status_ = Exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (status_.ok() && !committed_) Exec(db_, "ROLLBACK").IgnoreError();
  }
  const absl::Status& status() const { return status_; }
  absl::Status Commit() {
    absl::Status s = Exec(db_, "COMMIT");
    if (s.ok()) committed_ = true;
    return s;
  }

 private:
  sqlite3* db_;
  absl::Status status_;
  bool committed_ = false;
};

absl::Status SetMeta(sqlite3* db, const char* key, int64_t value) {
  Statement st(db,
               "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) "
               "DO UPDATE SET value = max(value, excluded.value)");
  if (!st.ok()) return SqlError(db, "prepare meta");
  st.Bind(1, std::string(key));
  st.Bind(2, value);
  if (st.Step() != SQLITE_DONE) return SqlError(db, "write meta");
  return absl::OkStatus();
}

// Whether `sequence` is stored for `job`, as an event or an iteration: the
// two share one sequence (and a replaced iteration record moves to a new
// one, so the iterations table's own key would not catch a repeat).
absl::StatusOr<bool> SequenceStored(sqlite3* db, const std::string& job, int64_t sequence) {
  Statement st(db,
               "SELECT 1 FROM events WHERE job = ?1 AND sequence = ?2 UNION ALL "
               "SELECT 1 FROM iterations WHERE job = ?1 AND sequence = ?2");
  if (!st.ok()) return SqlError(db, "prepare sequence check");
  st.Bind(1, job);
  st.Bind(2, sequence);
  const int rc = st.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(db, "check sequence");
  return rc == SQLITE_ROW;
}

template <typename T>
absl::StatusOr<std::vector<T>> ReadHistory(sqlite3* db, const char* table, const std::string& name,
                                           int64_t after, int limit) {
  {
    Statement exists(db, "SELECT 1 FROM jobs WHERE name = ?1");
    if (!exists.ok()) return SqlError(db, "prepare");
    exists.Bind(1, name);
    if (exists.Step() != SQLITE_ROW) {
      return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
    }
  }
  const std::string sql = absl::StrCat(
      "SELECT proto FROM ", table, " WHERE job = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3");
  Statement st(db, sql.c_str());
  if (!st.ok()) return SqlError(db, "prepare history");
  st.Bind(1, name);
  st.Bind(2, after);
  st.Bind(3, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<T> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    T row;
    if (!row.ParseFromString(st.Blob(0))) {
      return absl::DataLossError(absl::StrCat("job store: corrupt ", table, " row of job ", name));
    }
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return SqlError(db, "read history");
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path) {
  const std::string way_out = absl::StrCat(
      "; stop, then restore the last good copy (cp ", BackupPath(path), " ", path, ", and remove ",
      path, "-wal and ", path, "-shm), or move ", path, " away to start with an empty store");
  {
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) == 0 && !ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("job store ", path,
                       " is an empty file where a store should be (the "
                       "coordinator creates it with its schema, never empty)",
                       way_out));
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot open job store ", path, ": ",
                     db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db, path));
  // Before the WAL and shared-memory files exist: SQLite gives them the
  // database file's mode.
  ::chmod(path.c_str(), 0600);
  // Waits (instead of failing) while another connection holds the lock.
  sqlite3_busy_timeout(db, 5000);
  {
    // A damaged file must not be served as if it were whole.
    Statement st(db, "PRAGMA integrity_check(8)");
    std::string problems;
    while (st.ok() && st.Step() == SQLITE_ROW) {
      const std::string row = st.Blob(0);
      if (row != "ok") absl::StrAppend(&problems, problems.empty() ? "" : "; ", row);
    }
    if (!st.ok()) problems = sqlite3_errmsg(db);
    if (!problems.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job store ", path, " is damaged (", problems, ")", way_out));
    }
  }
  // WAL: readers never block the writer. synchronous=FULL syncs every
  // commit: job records must survive a node crash, not only a process
  // crash, and the write rate is low.
  absl::Status s = Exec(db, "PRAGMA journal_mode=WAL");
  if (s.ok()) s = Exec(db, "PRAGMA synchronous=FULL");
  if (!s.ok()) return s;
  int64_t version = 0;
  {
    Statement st(db, "PRAGMA user_version");
    if (!st.ok() || st.Step() != SQLITE_ROW) return SqlError(db, "read schema version");
    version = st.Int(0);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job store ", path, " has schema version ", version,
        "; this coordinator understands up to ", kSchemaVersion, " (written by a newer Chronos?)"));
  }
  if (version == 1) {
    s = store->MigrateFrom1();
    if (!s.ok()) return s;
  }
  s = Exec(db, kSchema);
  if (s.ok()) {
    s = Exec(db, absl::StrCat("PRAGMA user_version=", kSchemaVersion).c_str());
  }
  if (!s.ok()) return s;
  // Checked whole: this is the last good copy until the next one.
  s = store->Backup();
  if (!s.ok()) return s;
  return store;
}

absl::Status SqliteJobStore::Backup() {
  const std::string target = BackupPath(path_);
  const std::string tmp = target + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  {
    absl::MutexLock lock(&mu_);
    Statement st(db_, "VACUUM INTO ?1");
    if (!st.ok()) return SqlError(db_, "prepare backup");
    st.Bind(1, tmp);
    if (st.Step() != SQLITE_DONE) return SqlError(db_, "back up");
  }
  ::chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", target, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::MigrateFrom1() {
  // A copy as it was, for going back to a coordinator that reads schema 1.
  const std::string copy = absl::StrCat(path_, ".schema1");
  std::error_code ec;
  std::filesystem::remove(copy, ec);
  absl::MutexLock lock(&mu_);
  {
    Statement st(db_, "VACUUM INTO ?1");
    if (!st.ok()) return SqlError(db_, "prepare the pre-migration copy");
    st.Bind(1, copy);
    if (st.Step() != SQLITE_DONE) return SqlError(db_, "write the pre-migration copy");
  }
  ::chmod(copy.c_str(), 0600);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  absl::Status s = Exec(db_, kMigrateTo2);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("migrating ", path_, " to schema 2: ", s.message()));
  }
  return tx.Commit();
}

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::OpenInDirectory(
    const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory ", dir, ": ", ec.message()));
  }
  return Open((std::filesystem::path(dir) / "chronos.db").string());
}

SqliteJobStore::~SqliteJobStore() {
  absl::MutexLock lock(&mu_);
  // Closing checkpoints the WAL into the main file.
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

absl::StatusOr<StoreSnapshot> SqliteJobStore::Load() {
  absl::MutexLock lock(&mu_);
  StoreSnapshot snapshot;
  {
    Statement st(db_, "SELECT value FROM meta WHERE key = 'resource_version'");
    if (!st.ok()) return SqlError(db_, "prepare");
    if (st.Step() == SQLITE_ROW) snapshot.resource_version = st.Int(0);
  }
  Statement st(db_,
               "SELECT name, metadata, spec, status, "
               "(SELECT coalesce(max(sequence), 0) FROM events e WHERE e.job = "
               "jobs.name), "
               "(SELECT coalesce(max(sequence), 0) FROM iterations i WHERE "
               "i.job = jobs.name) "
               "FROM jobs ORDER BY seq");
  if (!st.ok()) return SqlError(db_, "prepare load");
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    StoredJob stored;
    const std::string name = st.Blob(0);
    if (!stored.job.mutable_metadata()->ParseFromString(st.Blob(1)) ||
        !stored.job.mutable_spec()->ParseFromString(st.Blob(2)) ||
        !stored.job.mutable_status()->ParseFromString(st.Blob(3))) {
      return absl::DataLossError(absl::StrCat("job store: corrupt row for job ", name));
    }
    stored.last_sequence = std::max(st.Int(4), st.Int(5));
    snapshot.jobs.push_back(std::move(stored));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "load jobs");
  return snapshot;
}

absl::Status SqliteJobStore::Write(const JobWrite& write, bool create) {
  const v1::Job& job = write.job;
  const std::string& name = job.metadata().name();
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  {
    Statement st(db_, "SELECT 1 FROM jobs WHERE name = ?1");
    if (!st.ok()) return SqlError(db_, "prepare");
    st.Bind(1, name);
    const bool exists = st.Step() == SQLITE_ROW;
    if (create && exists) {
      return absl::AlreadyExistsError(absl::StrCat("job ", name, " exists"));
    }
    if (!create && !exists) {
      return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
    }
  }
  {
    const char* sql = create ? "INSERT INTO jobs(name, seq, uid, generation, resource_version, "
                               "state, metadata, spec, status) VALUES(?1, (SELECT "
                               "coalesce(max(seq), 0) + 1 FROM jobs), ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                             : "UPDATE jobs SET uid = ?2, generation = ?3, resource_version = "
                               "?4, state = ?5, metadata = ?6, spec = ?7, status = ?8 WHERE "
                               "name = ?1";
    Statement st(db_, sql);
    if (!st.ok()) return SqlError(db_, "prepare job write");
    st.Bind(1, name);
    st.Bind(2, job.metadata().uid());
    st.Bind(3, job.metadata().generation());
    int64_t rv = 0;
    if (!absl::SimpleAtoi(job.metadata().resource_version(), &rv)) rv = 0;
    st.Bind(4, rv);
    st.Bind(5, static_cast<int64_t>(job.status().state()));
    st.BindBlob(6, job.metadata().SerializeAsString());
    st.BindBlob(7, job.spec().SerializeAsString());
    st.BindBlob(8, job.status().SerializeAsString());
    if (st.Step() != SQLITE_DONE) return SqlError(db_, "write job");
  }
  // A write whose history repeats a stored sequence changes nothing.
  std::vector<int64_t> sequences;
  for (const v1::JobEvent& e : write.events) sequences.push_back(e.sequence());
  for (const v1::IterationRecord& r : write.iterations) sequences.push_back(r.sequence());
  for (int64_t seq : sequences) {
    absl::StatusOr<bool> stored = SequenceStored(db_, name, seq);
    if (!stored.ok()) return stored.status();
    if (*stored) {
      return absl::AlreadyExistsError(
          absl::StrCat("job ", name, ": sequence ", seq, " already stored"));
    }
  }
  for (const v1::JobEvent& e : write.events) {
    Statement st(db_, "INSERT INTO events(job, sequence, proto) VALUES(?1, ?2, ?3)");
    if (!st.ok()) return SqlError(db_, "prepare event");
    st.Bind(1, name);
    st.Bind(2, e.sequence());
    st.BindBlob(3, e.SerializeAsString());
    const int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT) {
      return absl::AlreadyExistsError(
          absl::StrCat("job ", name, ": sequence ", e.sequence(), " already stored"));
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "write event");
  }
  for (const v1::IterationRecord& r : write.iterations) {
    // A redone iteration replaces the stored record of that iteration.
    Statement st(db_,
                 "INSERT INTO iterations(job, sequence, iteration, attempt, proto) "
                 "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(job, iteration) DO UPDATE SET "
                 "sequence = excluded.sequence, attempt = excluded.attempt, "
                 "proto = excluded.proto");
    if (!st.ok()) return SqlError(db_, "prepare iteration");
    st.Bind(1, name);
    st.Bind(2, r.sequence());
    st.Bind(3, r.iteration());
    st.Bind(4, static_cast<int64_t>(r.attempt()));
    st.BindBlob(5, r.SerializeAsString());
    const int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT) {
      return absl::AlreadyExistsError(
          absl::StrCat("job ", name, ": sequence ", r.sequence(), " already stored"));
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "write iteration");
  }
  absl::Status s = SetMeta(db_, "resource_version", write.resource_version);
  if (!s.ok()) return s;
  return tx.Commit();
}

absl::Status SqliteJobStore::Create(const JobWrite& write) { return Write(write, /*create=*/true); }

absl::Status SqliteJobStore::Update(const JobWrite& write) {
  return Write(write, /*create=*/false);
}

absl::Status SqliteJobStore::Delete(const std::string& name, int64_t resource_version) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  for (const char* sql :
       {"DELETE FROM events WHERE job = ?1", "DELETE FROM iterations WHERE job = ?1",
        "DELETE FROM jobs WHERE name = ?1"}) {
    Statement st(db_, sql);
    if (!st.ok()) return SqlError(db_, "prepare delete");
    st.Bind(1, name);
    if (st.Step() != SQLITE_DONE) return SqlError(db_, "delete");
  }
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("job ", name, " is not stored"));
  }
  absl::Status s = SetMeta(db_, "resource_version", resource_version);
  if (!s.ok()) return s;
  return tx.Commit();
}

absl::StatusOr<std::vector<v1::JobEvent>> SqliteJobStore::Events(const std::string& name,
                                                                 int64_t after_sequence,
                                                                 int limit) {
  absl::MutexLock lock(&mu_);
  return ReadHistory<v1::JobEvent>(db_, "events", name, after_sequence, limit);
}

absl::StatusOr<std::vector<v1::IterationRecord>> SqliteJobStore::Iterations(const std::string& name,
                                                                            int64_t after_sequence,
                                                                            int limit) {
  absl::MutexLock lock(&mu_);
  return ReadHistory<v1::IterationRecord>(db_, "iterations", name, after_sequence, limit);
}

}  // namespace chronos::coordinator
