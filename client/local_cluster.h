// A whole Chronos cluster on this machine for `chronosctl local run`: one
// chronos-coordinator and N chronos-worker processes, each with its output
// in a log file, started, awaited and stopped in order.
//
// Child processes must never outlive chronosctl: each runs in its own
// process group (so a terminal's Ctrl-C reaches only chronosctl, which then
// stops them in order) and with PR_SET_PDEATHSIG, so that they are killed
// even if chronosctl itself is killed. PR_SET_PDEATHSIG fires when the
// *thread* that forked exits, so Start* must be called from a thread that
// lives as long as the cluster (the main thread in chronosctl).
//
// Not thread-safe, except where a method says so.
#ifndef CHRONOS_CLIENT_LOCAL_CLUSTER_H_
#define CHRONOS_CLIENT_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/config.h"

namespace chronos::client {

// One child process whose stdout and stderr go to a log file; stdout lines
// are also kept so that readiness lines can be awaited.
class ChildProcess {
 public:
  // Forks and execs `path` with `args` (not including argv[0]).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::string& name,
                                                             const std::string& path,
                                                             const std::vector<std::string>& args,
                                                             const std::string& log_path);
  // Kills (SIGKILL) and reaps the process if it still runs.
  ~ChildProcess();

  const std::string& name() const { return name_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

  // The first stdout line that starts with `prefix`, waiting up to
  // `timeout`. kUnavailable when the process closes its output (exits)
  // first, kDeadlineExceeded on timeout, kCancelled when `stop` turns true
  // (checked every 100 ms). Thread-safe.
  absl::StatusOr<std::string> WaitForLine(absl::string_view prefix, absl::Duration timeout,
                                          const std::function<bool()>& stop = nullptr);

  // Whether the process has exited (reaps it if so).
  bool Exited();
  // "exited with status 1", "killed by signal 9", or "running".
  std::string ExitDescription();
  void Signal(int signo);
  // Waits until the process exits or `timeout` passes; true if it exited.
  bool WaitExit(absl::Duration timeout);

 private:
  ChildProcess(std::string name, std::string log_path, pid_t pid, int stdout_fd, int log_fd);
  void ReadOutput();

  const std::string name_;
  const std::string log_path_;
  const pid_t pid_;
  const int stdout_fd_;
  const int log_fd_;
  std::optional<int> wait_status_;
  std::thread reader_;

  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// Finds a daemon binary: in `bin_dir` when given (an error naming
// --bin-dir if it is not there), else next to `self_path` (this binary),
// else on $PATH.
absl::StatusOr<std::string> FindDaemon(const std::string& name, const std::string& bin_dir,
                                       const std::string& self_path, const EnvLookup& env);

struct LocalClusterOptions {
  std::string coordinator_path;
  std::string worker_path;
  int workers = 1;
  std::string data_dir;        // "" = a new temporary folder
  std::string token_file;      // passed to every daemon when set
  int threads_per_worker = 0;  // 0 = leave to the worker
  bool gpus = false;           // worker i runs --device cuda:i (else cpu)
  absl::Duration start_timeout = absl::Seconds(60);
  absl::Duration grace = absl::Seconds(10);  // SIGTERM → SIGKILL
};

class LocalCluster {
 public:
  // Starts the coordinator, waits for its listening line, then starts the
  // workers and waits for theirs. On failure everything started is stopped
  // and the status names the process and its log file. `stop` aborts the
  // waits (kCancelled).
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(
      const LocalClusterOptions& options, const std::function<bool()>& stop = nullptr);
  ~LocalCluster();  // Shutdown()

  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& data_dir() const { return data_dir_; }
  bool created_data_dir() const { return created_data_dir_; }
  std::vector<std::string> LogFiles() const;
  // The first daemon that has exited, as "worker-1 exited with status 1
  // (log: ...)", or "" when all run.
  std::string FirstExited();

  // SIGTERM to every daemon (workers first, so the coordinator sees them
  // leave), then SIGKILL to whatever is left after the grace period.
  // Idempotent.
  void Shutdown();

 private:
  LocalCluster() = default;

  LocalClusterOptions options_;
  std::string data_dir_;
  bool created_data_dir_ = false;
  std::string grpc_address_;
  std::vector<std::string> log_files_;  // outlives the processes
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

// "chronos-coordinator listening grpc=127.0.0.1:4242 metrics=..." → the
// value of `key` ("grpc"), or "" when absent.
std::string ListeningAddress(absl::string_view line, absl::string_view key);

}  // namespace chronos::client

#endif  // CHRONOS_CLIENT_LOCAL_CLUSTER_H_
