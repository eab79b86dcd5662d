#include "client/local_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace chronos::client {
namespace {

constexpr char kCoordinatorReady[] = "chronos-coordinator listening";
constexpr char kWorkerReady[] = "chronos-worker listening";

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& name, const std::string& path, const std::vector<std::string>& args,
    const std::string& log_path) {
  // Everything the child needs is prepared before fork: after it, in a
  // process with other threads, only async-signal-safe calls are allowed.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(path);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Errno(absl::StrCat("cannot open log file ", log_path));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return Errno("cannot open /dev/null");
  }
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(log_fd);
    close(null_fd);
    return Errno("pipe2");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    close(null_fd);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Errno("fork");
  }
  if (pid == 0) {
    setpgid(0, 0);  // keep a terminal's Ctrl-C away; chronosctl stops us in order
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // chronosctl died before prctl took effect
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    dup2(null_fd, 0);
    dup2(out_pipe[1], 1);
    dup2(log_fd, 2);
    execv(argv[0], argv.data());
    static const char kMsg[] = "chronosctl: exec failed\n";
    ssize_t ignored = write(2, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    _exit(127);
  }
  // Also set the group from the parent: whichever runs first wins, so a
  // signal sent to the group right after fork cannot miss the child.
  setpgid(pid, pid);
  close(null_fd);
  close(out_pipe[1]);
  return std::unique_ptr<ChildProcess>(new ChildProcess(name, log_path, pid, out_pipe[0], log_fd));
}

ChildProcess::ChildProcess(std::string name, std::string log_path, pid_t pid, int stdout_fd,
                           int log_fd)
    : name_(std::move(name)),
      log_path_(std::move(log_path)),
      pid_(pid),
      stdout_fd_(stdout_fd),
      log_fd_(log_fd) {
  reader_ = std::thread([this] { ReadOutput(); });
}

ChildProcess::~ChildProcess() {
  if (!Exited()) {
    Signal(SIGKILL);
    WaitExit(absl::InfiniteDuration());
  }
  // The pipe reaches EOF once the child (and anything it forked that kept
  // its stdout) is gone.
  if (reader_.joinable()) reader_.join();
  close(stdout_fd_);
  close(log_fd_);
}

void ChildProcess::ReadOutput() {
  std::string partial;
  char buf[4096];
  while (true) {
    const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // The log gets everything, in order with the child's stderr (both go
    // through O_APPEND writes to the same file).
    ssize_t off = 0;
    while (off < n) {
      const ssize_t w = write(log_fd_, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += w;
    }
    partial.append(buf, n);
    size_t nl;
    std::vector<std::string> complete;
    while ((nl = partial.find('\n')) != std::string::npos) {
      complete.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
    if (!complete.empty()) {
      absl::MutexLock lock(&mu_);
      // Only the first lines matter (readiness); keep a bounded number so a
      // chatty daemon cannot grow chronosctl's memory.
      for (std::string& l : complete) {
        if (lines_.size() < 1000) lines_.push_back(std::move(l));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  if (!partial.empty() && lines_.size() < 1000) lines_.push_back(partial);
  eof_ = true;
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(absl::string_view prefix,
                                                      absl::Duration timeout,
                                                      const std::function<bool()>& stop) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  size_t seen = 0;
  while (true) {
    for (; seen < lines_.size(); ++seen) {
      if (absl::StartsWith(lines_[seen], prefix)) return lines_[seen];
    }
    if (eof_) {
      return absl::UnavailableError(
          absl::StrCat(name_, " exited before it was ready (log: ", log_path_, ")"));
    }
    if (stop && stop()) return absl::CancelledError("interrupted");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(name_, " did not report '", prefix,
                                                      "' within ", absl::FormatDuration(timeout),
                                                      " (log: ", log_path_, ")"));
    }
    const size_t have = lines_.size();
    auto changed = [this, have]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lines_.size() != have || eof_; };
    mu_.AwaitWithTimeout(absl::Condition(&changed),
                         std::min(absl::Milliseconds(100), deadline - absl::Now()));
  }
}

bool ChildProcess::Exited() {
  if (wait_status_.has_value()) return true;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    wait_status_ = status;
    return true;
  }
  return r < 0 && errno == ECHILD;  // reaped elsewhere; treat as gone
}

std::string ChildProcess::ExitDescription() {
  if (!Exited()) return "running";
  if (!wait_status_.has_value()) return "exited";
  const int s = *wait_status_;
  if (WIFEXITED(s)) return absl::StrCat("exited with status ", WEXITSTATUS(s));
  if (WIFSIGNALED(s)) return absl::StrCat("was killed by signal ", WTERMSIG(s));
  return "exited";
}

void ChildProcess::Signal(int signo) {
  if (Exited()) return;
  // The whole group, so that anything the daemon forked goes too (and
  // releases the stdout pipe the reader thread waits on).
  if (kill(-pid_, signo) != 0) kill(pid_, signo);
}

bool ChildProcess::WaitExit(absl::Duration timeout) {
  // No waitpid with a timeout exists; short polls are fine for a shutdown
  // that happens once per run.
  const absl::Time deadline = absl::Now() + timeout;
  while (!Exited()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

absl::StatusOr<std::string> FindDaemon(const std::string& name, const std::string& bin_dir,
                                       const std::string& self_path, const EnvLookup& env) {
  if (!bin_dir.empty()) {
    const std::string p = absl::StrCat(bin_dir, "/", name);
    if (IsExecutable(p)) return p;
    return absl::NotFoundError(absl::StrCat("--bin-dir: no executable ", p));
  }
  std::string self = self_path;
  if (self.empty()) {
    std::error_code ec;
    self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  }
  if (!self.empty()) {
    const std::string p = absl::StrCat(Dirname(self), "/", name);
    if (IsExecutable(p)) return p;
  }
  for (absl::string_view dir : absl::StrSplit(env("PATH").value_or(""), ':', absl::SkipEmpty())) {
    const std::string p = absl::StrCat(dir, "/", name);
    if (IsExecutable(p)) return p;
  }
  return absl::NotFoundError(absl::StrCat("cannot find ", name, " next to chronosctl (",
                                          Dirname(self), ") or on PATH; use --bin-dir"));
}

std::string ListeningAddress(absl::string_view line, absl::string_view key) {
  const std::string k = absl::StrCat(key, "=");
  for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    if (absl::StartsWith(word, k)) return std::string(word.substr(k.size()));
  }
  return "";
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(
    const LocalClusterOptions& options, const std::function<bool()>& stop) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = options;
  if (options.data_dir.empty()) {
    std::string tmpl = absl::StrCat(
        std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp", "/chronos-local-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) return Errno("cannot create a temporary data dir");
    c->data_dir_ = tmpl;
    c->created_data_dir_ = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("--data-dir: cannot create ", options.data_dir, ": ", ec.message()));
    }
    c->data_dir_ = std::filesystem::absolute(options.data_dir).string();
  }
  const std::string logs = absl::StrCat(c->data_dir_, "/logs");
  const std::string store = absl::StrCat(c->data_dir_, "/coordinator");
  std::error_code ec;
  std::filesystem::create_directories(logs, ec);
  std::filesystem::create_directories(store, ec);

  std::vector<std::string> coord_args = {"--listen",    "127.0.0.1:0", "--metrics-listen",
                                         "127.0.0.1:0", "--data-dir",  store};
  if (!options.token_file.empty()) {
    coord_args.push_back("--token-file");
    coord_args.push_back(options.token_file);
  }
  c->log_files_.push_back(absl::StrCat(logs, "/coordinator.log"));
  for (int i = 0; i < options.workers; ++i) {
    c->log_files_.push_back(absl::StrCat(logs, "/worker-", i, ".log"));
  }
  CHRONOS_ASSIGN_OR_RETURN(
      c->coordinator_,
      ChildProcess::Start("coordinator", options.coordinator_path, coord_args, c->log_files_[0]));
  CHRONOS_ASSIGN_OR_RETURN(std::string line, c->coordinator_->WaitForLine(
                                                 kCoordinatorReady, options.start_timeout, stop));
  c->grpc_address_ = ListeningAddress(line, "grpc");
  if (c->grpc_address_.empty()) {
    return absl::InternalError(absl::StrCat("cannot parse the coordinator's address from '", line,
                                            "' (log: ", c->coordinator_->log_path(), ")"));
  }

  for (int i = 0; i < options.workers; ++i) {
    std::vector<std::string> args = {
        "--coordinator",    c->grpc_address_,
        "--metrics-listen", "127.0.0.1:0",
        "--device",         options.gpus ? absl::StrCat("cuda:", i) : std::string("cpu"),
        "--name",           absl::StrCat("local-worker-", i)};
    if (options.threads_per_worker > 0) {
      args.push_back("--threads");
      args.push_back(absl::StrCat(options.threads_per_worker));
    }
    if (!options.token_file.empty()) {
      args.push_back("--token-file");
      args.push_back(options.token_file);
    }
    CHRONOS_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> w,
                             ChildProcess::Start(absl::StrCat("worker-", i), options.worker_path,
                                                 args, c->log_files_[i + 1]));
    c->workers_.push_back(std::move(w));
  }
  // Started all at once and awaited together: each takes about a second to
  // load LibTorch, which would add up one after another.
  for (const auto& w : c->workers_) {
    CHRONOS_RETURN_IF_ERROR(w->WaitForLine(kWorkerReady, options.start_timeout, stop).status());
  }
  return c;
}

LocalCluster::~LocalCluster() { Shutdown(); }

std::vector<std::string> LocalCluster::LogFiles() const { return log_files_; }

std::string LocalCluster::FirstExited() {
  std::vector<ChildProcess*> all;
  if (coordinator_ != nullptr) all.push_back(coordinator_.get());
  for (const auto& w : workers_) all.push_back(w.get());
  for (ChildProcess* p : all) {
    if (p->Exited()) {
      return absl::StrCat(p->name(), " ", p->ExitDescription(), " (log: ", p->log_path(), ")");
    }
  }
  return "";
}

void LocalCluster::Shutdown() {
  const absl::Time deadline = absl::Now() + options_.grace;
  for (const auto& w : workers_) w->Signal(SIGTERM);
  for (const auto& w : workers_) {
    if (!w->WaitExit(deadline - absl::Now())) w->Signal(SIGKILL);
  }
  if (coordinator_ != nullptr) {
    coordinator_->Signal(SIGTERM);
    if (!coordinator_->WaitExit(std::max(absl::Seconds(1), deadline - absl::Now()))) {
      coordinator_->Signal(SIGKILL);
    }
  }
  // The destructors reap what SIGKILL stopped.
  workers_.clear();
  coordinator_.reset();
}

}  // namespace chronos::client
