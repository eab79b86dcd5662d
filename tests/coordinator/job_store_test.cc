// Both JobStore implementations against the same contract, and the SQLite
// one across reopening.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "coordinator/in_memory_job_store.h"
#include "coordinator/sqlite_job_store.h"

namespace chronos::coordinator {
namespace {

std::string TempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   absl::StrCat("chronos_store_", ::getpid(), "_", name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

JobWrite Write(const std::string& name, int64_t rv, v1::JobState state,
               std::vector<int64_t> event_seqs, std::vector<int64_t> iteration_seqs) {
  JobWrite w;
  w.job.mutable_metadata()->set_name(name);
  w.job.mutable_metadata()->set_uid("uid-" + name);
  w.job.mutable_metadata()->set_resource_version(absl::StrCat(rv));
  w.job.mutable_spec()->set_name(name);
  w.job.mutable_status()->set_state(state);
  w.resource_version = rv;
  for (int64_t s : event_seqs) {
    v1::JobEvent e;
    e.set_sequence(s);
    e.set_type(absl::StrCat("E", s));
    w.events.push_back(e);
  }
  for (int64_t s : iteration_seqs) {
    v1::IterationRecord r;
    r.set_sequence(s);
    r.set_iteration(s * 10);
    w.iterations.push_back(r);
  }
  return w;
}

class JobStoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      store_ = std::make_unique<InMemoryJobStore>();
    } else {
      auto s = SqliteJobStore::OpenInDirectory(TempDir("contract"));
      ASSERT_TRUE(s.ok()) << s.status();
      store_ = std::move(*s);
    }
  }
  std::unique_ptr<JobStore> store_;
};

TEST_P(JobStoreContractTest, CreateUpdateAndReadHistoryInOrder) {
  ASSERT_TRUE(store_->Create(Write("a", 1, v1::JOB_STATE_PENDING, {1}, {})).ok());
  ASSERT_TRUE(store_->Create(Write("b", 2, v1::JOB_STATE_PENDING, {1}, {})).ok());
  EXPECT_EQ(store_->Create(Write("a", 3, v1::JOB_STATE_PENDING, {}, {})).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->Update(Write("a", 4, v1::JOB_STATE_RUNNING, {2, 4}, {3, 5})).ok());
  EXPECT_EQ(store_->Update(Write("zz", 5, v1::JOB_STATE_RUNNING, {}, {})).code(),
            absl::StatusCode::kNotFound);
  // A repeated sequence fails the whole write.
  EXPECT_EQ(store_->Update(Write("a", 6, v1::JOB_STATE_FAILED, {6}, {5})).code(),
            absl::StatusCode::kAlreadyExists);

  absl::StatusOr<StoreSnapshot> snap = store_->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->jobs.size(), 2u);
  EXPECT_EQ(snap->jobs[0].job.metadata().name(), "a");
  EXPECT_EQ(snap->jobs[0].job.status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(snap->jobs[0].last_sequence, 5);
  EXPECT_EQ(snap->jobs[1].last_sequence, 1);
  EXPECT_EQ(snap->resource_version, 4);

  auto events = store_->Events("a", 1, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].sequence(), 2);
  EXPECT_EQ((*events)[1].sequence(), 4);
  auto its = store_->Iterations("a", 0, 1);
  ASSERT_TRUE(its.ok());
  ASSERT_EQ(its->size(), 1u);
  EXPECT_EQ((*its)[0].iteration(), 30);
  EXPECT_EQ(store_->Events("nope", 0, 0).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreContractTest, DeleteRemovesHistoryButKeepsTheVersionCounter) {
  ASSERT_TRUE(store_->Create(Write("a", 7, v1::JOB_STATE_SUCCEEDED, {1}, {2})).ok());
  ASSERT_TRUE(store_->Delete("a", 8).ok());
  EXPECT_EQ(store_->Delete("a", 9).code(), absl::StatusCode::kNotFound);
  auto snap = store_->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->jobs.empty());
  EXPECT_EQ(snap->resource_version, 8);
  ASSERT_TRUE(store_->Create(Write("a", 9, v1::JOB_STATE_PENDING, {1}, {})).ok());
  EXPECT_EQ(store_->Iterations("a", 0, 0)->size(), 0u);
}

v1::IterationRecord Record(int64_t iteration, int64_t sequence, int attempt) {
  v1::IterationRecord r;
  r.set_iteration(iteration);
  r.set_sequence(sequence);
  r.set_attempt(attempt);
  return r;
}

// A redone iteration (a later attempt, after a recovery from a checkpoint)
// replaces the stored record of that iteration: the history holds each
// iteration once, the newest attempt's, at its new place in the order.
TEST_P(JobStoreContractTest, ARecordReplacesTheStoredRecordOfTheSameIteration) {
  JobWrite w = Write("a", 1, v1::JOB_STATE_RUNNING, {1}, {});
  for (int64_t it = 1; it <= 4; ++it) w.iterations.push_back(Record(it, it + 1, 1));
  ASSERT_TRUE(store_->Create(w).ok());
  JobWrite redo = Write("a", 2, v1::JOB_STATE_RUNNING, {6}, {});
  redo.iterations.push_back(Record(3, 7, 2));
  ASSERT_TRUE(store_->Update(redo).ok());
  auto its = store_->Iterations("a", 0, 0);
  ASSERT_TRUE(its.ok());
  std::vector<std::pair<int64_t, int>> got;
  for (const v1::IterationRecord& r : *its) got.push_back({r.iteration(), r.attempt()});
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, int>>{{1, 1}, {2, 1}, {4, 1}, {3, 2}}));
  // Read from a point in the history: the replaced record is at its new place.
  its = store_->Iterations("a", 5, 0);
  ASSERT_TRUE(its.ok());
  ASSERT_EQ(its->size(), 1u);
  EXPECT_EQ((*its)[0].attempt(), 2);
  // A repeated sequence still fails the whole write, replacement or not.
  JobWrite again = Write("a", 3, v1::JOB_STATE_RUNNING, {8}, {});
  again.iterations.push_back(Record(4, 7, 2));
  EXPECT_EQ(store_->Update(again).code(), absl::StatusCode::kAlreadyExists);
  its = store_->Iterations("a", 0, 0);
  ASSERT_TRUE(its.ok());
  EXPECT_EQ(its->size(), 4u);
  EXPECT_EQ(store_->Events("a", 0, 0)->size(), 2u);
  auto snap = store_->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->jobs[0].last_sequence, 7);
}

INSTANTIATE_TEST_SUITE_P(Stores, JobStoreContractTest, ::testing::Values("memory", "sqlite"));

TEST(SqliteJobStoreTest, SurvivesReopening) {
  const std::string dir = TempDir("reopen");
  {
    auto s = SqliteJobStore::OpenInDirectory(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Create(Write("a", 1, v1::JOB_STATE_PENDING, {1}, {})).ok());
    ASSERT_TRUE((*s)->Update(Write("a", 2, v1::JOB_STATE_RUNNING, {2}, {3})).ok());
  }
  auto s = SqliteJobStore::OpenInDirectory(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->jobs.size(), 1u);
  EXPECT_EQ(snap->jobs[0].job.metadata().uid(), "uid-a");
  EXPECT_EQ(snap->jobs[0].job.status().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(snap->jobs[0].last_sequence, 3);
  EXPECT_EQ(snap->resource_version, 2);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / "chronos.db"));
}

TEST(SqliteJobStoreTest, RefusesAFileFromANewerSchema) {
  const std::string dir = TempDir("newer");
  {
    auto s = SqliteJobStore::OpenInDirectory(dir);
    ASSERT_TRUE(s.ok());
  }
  // Bump user_version behind the store's back.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((std::filesystem::path(dir) / "chronos.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = SqliteJobStore::OpenInDirectory(dir);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("schema version 99"), std::string::npos);
}

// A store written by schema 1 (iterations keyed by sequence, where the old
// coordinator recorded redone iterations a second time) is migrated when
// opened: each iteration once, the newest attempt's; the rest untouched;
// a copy as it was beside it.
TEST(SqliteJobStoreTest, ASchemaOneStoreIsMigratedKeepingEachIterationOnce) {
  const std::string dir = TempDir("schema1");
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / "chronos.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  v1::JobMetadata md;
  md.set_name("old");
  md.set_uid("uid-old");
  md.set_resource_version("3");
  v1::JobSpec spec;
  spec.set_name("old");
  v1::JobStatus status;
  status.set_state(v1::JOB_STATE_SUCCEEDED);
  std::string sql = absl::StrCat(
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
      "CREATE TABLE jobs (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, uid TEXT NOT NULL,"
      "  generation INTEGER NOT NULL, resource_version INTEGER NOT NULL, state INTEGER NOT NULL,"
      "  metadata BLOB NOT NULL, spec BLOB NOT NULL, status BLOB NOT NULL);"
      "CREATE TABLE events (job TEXT NOT NULL, sequence INTEGER NOT NULL, proto BLOB NOT NULL,"
      "  PRIMARY KEY (job, sequence)) WITHOUT ROWID;"
      "CREATE TABLE iterations (job TEXT NOT NULL, sequence INTEGER NOT NULL,"
      "  iteration INTEGER NOT NULL, attempt INTEGER NOT NULL, proto BLOB NOT NULL,"
      "  PRIMARY KEY (job, sequence)) WITHOUT ROWID;"
      "INSERT INTO meta VALUES('resource_version', 3);"
      "PRAGMA user_version=1;");
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  // Attempt 1 ran 1..4 (sequences 2..5); attempt 2 resumed from 2 and ran
  // 3..5 (sequences 7..9): 3 and 4 are stored twice.
  sql = absl::StrCat("INSERT INTO jobs VALUES('old', 1, 'uid-old', 1, 3, ", status.state(), ", X'",
                     absl::BytesToHexString(md.SerializeAsString()), "', X'",
                     absl::BytesToHexString(spec.SerializeAsString()), "', X'",
                     absl::BytesToHexString(status.SerializeAsString()), "');");
  for (const v1::IterationRecord& r :
       {Record(1, 2, 1), Record(2, 3, 1), Record(3, 4, 1), Record(4, 5, 1), Record(3, 7, 2),
        Record(4, 8, 2), Record(5, 9, 2)}) {
    absl::StrAppend(&sql, "INSERT INTO iterations VALUES('old', ", r.sequence(), ", ",
                    r.iteration(), ", ", r.attempt(), ", X'",
                    absl::BytesToHexString(r.SerializeAsString()), "');");
  }
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto s = SqliteJobStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  auto its = (*s)->Iterations("old", 0, 0);
  ASSERT_TRUE(its.ok()) << its.status();
  std::vector<std::pair<int64_t, int>> got;
  for (const v1::IterationRecord& r : *its) got.push_back({r.iteration(), r.attempt()});
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, int>>{{1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 2}}));
  auto snap = (*s)->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->jobs.size(), 1u);
  EXPECT_EQ(snap->jobs[0].job.metadata().uid(), "uid-old");
  EXPECT_EQ(snap->jobs[0].last_sequence, 9);
  EXPECT_EQ(snap->resource_version, 3);
  // New writes replace by iteration.
  JobWrite redo = Write("old", 4, v1::JOB_STATE_SUCCEEDED, {}, {});
  redo.iterations.push_back(Record(5, 10, 3));
  ASSERT_TRUE((*s)->Update(redo).ok());
  EXPECT_EQ((*s)->Iterations("old", 0, 0)->size(), 5u);
  s->reset();
  // The copy as it was: schema 1, all seven rows.
  sqlite3* copy = nullptr;
  ASSERT_EQ(sqlite3_open_v2((path + ".schema1").c_str(), &copy, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(copy, "SELECT count(*) FROM iterations", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 7);
  sqlite3_finalize(st);
  sqlite3_close(copy);
  // Reopened: schema 2 already, nothing migrated again.
  auto again = SqliteJobStore::Open(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Iterations("old", 0, 0)->size(), 5u);
}

}  // namespace
}  // namespace chronos::coordinator

namespace chronos::coordinator {
namespace {

std::string DbIn(const std::string& dir) { return dir + "/chronos.db"; }

// Two jobs written and closed cleanly.
void WriteTwoJobs(const std::string& dir) {
  auto s = SqliteJobStore::OpenInDirectory(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  for (const char* name : {"a", "b"}) {
    JobWrite w;
    w.job.mutable_metadata()->set_name(name);
    w.job.mutable_metadata()->set_uid(std::string(name) + "-uid");
    w.resource_version = name[0] == 'a' ? 1 : 2;
    for (int i = 1; i <= 200; ++i) {
      v1::IterationRecord* r = &w.iterations.emplace_back();
      r->set_sequence(i);
      r->set_iteration(i);
    }
    ASSERT_TRUE((*s)->Create(w).ok());
  }
}

TEST(SqliteJobStoreTest, TheStoreAndItsBackupAreOwnerOnly) {
  const std::string dir = TempDir("mode");
  WriteTwoJobs(dir);
  struct stat st {};
  ASSERT_EQ(stat(DbIn(dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(SqliteJobStore::BackupPath(DbIn(dir)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Garbage in the middle of the file, or an empty file: the store refuses to
// start, naming the file and the way out, instead of serving part of it;
// the last good copy brings every job back.
TEST(SqliteJobStoreTest, ADamagedOrEmptiedStoreRefusesToStartAndTheBackupRestoresIt) {
  const std::string dir = TempDir("damage");
  WriteTwoJobs(dir);
  {
    auto s = SqliteJobStore::OpenInDirectory(dir);  // backs up the whole store
    ASSERT_TRUE(s.ok()) << s.status();
  }
  const std::string db = DbIn(dir);
  const auto size = std::filesystem::file_size(db);
  ASSERT_GT(size, 16384u);
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size * 3 / 4));
    const std::string garbage(2048, '\x5a');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto damaged = SqliteJobStore::OpenInDirectory(dir);
  ASSERT_EQ(damaged.status().code(), absl::StatusCode::kFailedPrecondition) << damaged.status();
  EXPECT_NE(damaged.status().message().find(db), std::string::npos) << damaged.status();
  EXPECT_NE(damaged.status().message().find(".backup"), std::string::npos) << damaged.status();

  std::filesystem::resize_file(db, 0);
  auto empty = SqliteJobStore::OpenInDirectory(dir);
  ASSERT_EQ(empty.status().code(), absl::StatusCode::kFailedPrecondition) << empty.status();
  EXPECT_NE(empty.status().message().find("empty file"), std::string::npos) << empty.status();

  // The documented restore.
  std::filesystem::copy_file(SqliteJobStore::BackupPath(db), db,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  auto restored = SqliteJobStore::OpenInDirectory(dir);
  ASSERT_TRUE(restored.ok()) << restored.status();
  absl::StatusOr<StoreSnapshot> snap = (*restored)->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->jobs.size(), 2u);
  auto its = (*restored)->Iterations("b", 0, 0);
  ASSERT_TRUE(its.ok());
  EXPECT_EQ(its->size(), 200u);
}

}  // namespace
}  // namespace chronos::coordinator
