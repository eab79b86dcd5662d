// `chronosctl local run`: a coordinator and N CPU workers on this machine,
// one job through them, a summary, and everything stopped again, also on
// Ctrl-C or SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/job_file.h"
#include "client/job_view.h"
#include "client/job_watcher.h"
#include "client/local_cluster.h"
#include "core/data_path.h"
#include "core/job_spec.h"
#include "core/proto_json.h"
#include "core/size.h"

namespace chronos::client {
namespace {

// Self-pipe for SIGINT/SIGTERM: the handler only writes the signal number
// (async-signal-safe); a thread reads it and cancels whatever is running.
int g_signal_pipe_write = -1;

extern "C" void OnTerminatingSignal(int signo) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(signo);
  if (g_signal_pipe_write >= 0) {
    ssize_t ignored = write(g_signal_pipe_write, &b, 1);
    (void)ignored;
  }
  errno = saved;
}

// Installs the handlers for its lifetime and calls `on_signal` (on its own
// thread) when one arrives. Restores the previous handlers on destruction.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
    if (pipe2(fds_, O_CLOEXEC) != 0) return;
    g_signal_pipe_write = fds_[1];
    struct sigaction sa = {};
    sa.sa_handler = OnTerminatingSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    installed_ = true;
    thread_ = std::thread([this] {
      unsigned char b;
      while (true) {
        const ssize_t n = read(fds_[0], &b, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || b == 0) return;  // 0: the destructor asks us to stop
        signal_ = b;
        on_signal_(b);
      }
    });
  }
  ~SignalWatcher() {
    if (!installed_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    const unsigned char stop = 0;
    ssize_t ignored = write(fds_[1], &stop, 1);
    (void)ignored;
    thread_.join();
    g_signal_pipe_write = -1;
    close(fds_[0]);
    close(fds_[1]);
  }
  int signal() const { return signal_.load(); }

 private:
  std::function<void(int)> on_signal_;
  int fds_[2] = {-1, -1};
  bool installed_ = false;
  struct sigaction old_int_ = {};
  struct sigaction old_term_ = {};
  std::thread thread_;
  std::atomic<int> signal_{0};
};

struct LocalRunFlags {
  std::string file;
  int workers = 0;
  std::string data_dir;
  bool keep = false;
  std::string bin_dir;
  int threads = 0;
  std::string device = "cpu";
  std::string start_timeout = "120s";
};

nlohmann::json Summary(const v1::Job& job, const std::vector<v1::IterationRecord>& iterations,
                       const LocalCluster* cluster) {
  nlohmann::json j;
  j["job"] = job.metadata().name();
  j["state"] = JobStateName(job.status().state());
  j["message"] = job.status().message();
  j["restarts"] = job.status().restarts();
  nlohmann::json its = nlohmann::json::array();
  for (const v1::IterationRecord& it : iterations) {
    nlohmann::json r = ProtoToJson(it, /*include_defaults=*/true);
    r.erase("time");
    its.push_back(std::move(r));
  }
  j["iterations"] = std::move(its);
  if (cluster != nullptr) {
    j["data_dir"] = cluster->data_dir();
    j["logs"] = cluster->LogFiles();
  }
  return j;
}

void PrintSummaryTable(std::ostream& out, const v1::Job& job,
                       const std::vector<v1::IterationRecord>& iterations) {
  std::vector<Row> rows;
  const size_t first = iterations.size() > 20 ? iterations.size() - 10 : 0;
  for (size_t i = first; i < iterations.size(); ++i) {
    const v1::IterationRecord& it = iterations[i];
    int64_t act = 0, off = 0, hbm = 0;
    for (const v1::DeviceIteration& d : it.devices()) {
      act = std::max(act, d.peak_activation_bytes());
      off = std::max(off, d.peak_offloaded_bytes());
      hbm = std::max(hbm, d.hbm_peak_bytes());
    }
    rows.push_back({absl::StrCat(it.iteration()), FormatDouble(it.loss(), 4),
                    FormatRate(it.tokens_per_second()), FormatSeconds(it.iteration_seconds()),
                    FormatBytes(act), FormatBytes(off), FormatBytes(hbm)});
  }
  if (!rows.empty()) {
    PrintTable(
        out, {"ITER", "LOSS", "TOKENS/S", "TIME", "MAX-ACT-PEAK", "MAX-OFFLOADED", "MAX-MEM-PEAK"},
        rows);
  }
  out << "job/" << job.metadata().name() << " " << JobStateName(job.status().state());
  if (!iterations.empty()) {
    out << " after " << iterations.back().iteration() << " iterations, final loss "
        << FormatDouble(iterations.back().loss(), 4);
  }
  if (!job.status().message().empty()) out << ": " << job.status().message();
  out << "\n";
}

int RunLocal(CommandContext& ctx, const LocalRunFlags& f) {
  CHRONOSCTL_ASSIGN_OR_FAIL(ctx, OutputFormat format, ctx.Output());
  if (f.workers < 1) {
    return ctx.Fail(UsageError(absl::StrCat("--workers must be >= 1 (got ", f.workers, ")")));
  }
  CHRONOSCTL_ASSIGN_OR_FAIL(ctx, absl::Duration start_timeout,
                            ParseDurationFlag("--start-timeout", f.start_timeout));
  CHRONOSCTL_ASSIGN_OR_FAIL(ctx, v1::JobSpec spec,
                            LoadJobFileForSubmit(f.file, CurrentDirectory()));
  {
    v1::JobSpec defaulted = spec;
    ApplyJobSpecDefaults(&defaulted);
    const int needed = defaulted.parallel().pipeline() * defaulted.parallel().data();
    if (f.workers < needed) {
      return ctx.Fail(UsageError(absl::StrCat("--workers ", f.workers,
                                              " is fewer than the job needs (parallel.pipeline x "
                                              "parallel.data = ",
                                              needed, ")")));
    }
    // The workers of a local cluster read data.path here: say what is wrong
    // with it before starting any process (a wrong spec for this machine).
    if (absl::Status s = CheckDataPath(defaulted.data().path(),
                                       defaulted.data().format() == v1::DATA_FORMAT_LLMC);
        !s.ok()) {
      return ctx.Fail(absl::InvalidArgumentError(absl::StrCat(f.file, ": ", s.message())));
    }
  }
  LocalClusterOptions options;
  CHRONOSCTL_ASSIGN_OR_FAIL(
      ctx, options.coordinator_path,
      FindDaemon("chronos-coordinator", f.bin_dir, ctx.run().self_path, ctx.run().env));
  CHRONOSCTL_ASSIGN_OR_FAIL(
      ctx, options.worker_path,
      FindDaemon("chronos-worker", f.bin_dir, ctx.run().self_path, ctx.run().env));
  options.workers = f.workers;
  options.gpus = f.device == "cuda";
  options.data_dir = f.data_dir;
  options.token_file = ctx.flags().connection.token_file;
  options.start_timeout = start_timeout;
  if (f.threads > 0) {
    options.threads_per_worker = f.threads;
  } else {
    // Share the machine's cores: N LibTorch processes each using every core
    // would oversubscribe it badly.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    options.threads_per_worker = std::max(1, cores / f.workers);
  }
  std::string token;
  if (!options.token_file.empty()) {
    CHRONOSCTL_ASSIGN_OR_FAIL(ctx, Connection conn, ctx.ResolveConnection());
    token = conn.token;
  }

  CallCanceller canceller;
  SignalWatcher signals([&canceller](int) { canceller.Cancel(); });
  auto stop = [&canceller] { return canceller.cancelled(); };
  std::ostream& log = ctx.err();
  const auto interrupted = [&]() {
    const int sig = signals.signal();
    log << "\ninterrupted" << (sig == SIGTERM ? " (SIGTERM)" : "") << ": stopping the cluster\n";
    return sig == SIGTERM ? 128 + SIGTERM : static_cast<int>(kExitInterrupted);
  };

  log << "starting chronos-coordinator and " << f.workers << " chronos-worker process"
      << (f.workers == 1 ? "" : "es") << "\n";
  absl::StatusOr<std::unique_ptr<LocalCluster>> started = LocalCluster::Start(options, stop);
  if (!started.ok()) {
    if (started.status().code() == absl::StatusCode::kCancelled) return interrupted();
    return ctx.Fail(started.status());
  }
  std::unique_ptr<LocalCluster> cluster = std::move(*started);
  log << "coordinator at " << cluster->grpc_address() << ", logs in " << cluster->data_dir()
      << "/logs\n";

  // From here on any failure keeps the data dir so that the logs survive.
  bool keep = f.keep || !cluster->created_data_dir();
  auto fail = [&](const absl::Status& s) {
    const int code = ctx.Fail(s);
    cluster->Shutdown();
    log << "logs kept in " << cluster->data_dir() << "/logs:\n";
    for (const std::string& p : cluster->LogFiles()) log << "  " << p << "\n";
    return code;
  };

  Connection conn;
  conn.server = cluster->grpc_address();
  conn.server_source = "local cluster";
  conn.token = token;
  conn.request_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<ControlClient>> made = ControlClient::Create(conn);
  if (!made.ok()) return fail(made.status());
  ControlClient& client = **made;

  // Workers are listening before they have registered and attached; the
  // job would otherwise wait in PENDING for them (or be placed on fewer).
  const absl::Time deadline = absl::Now() + start_timeout;
  while (true) {
    if (canceller.cancelled()) {
      cluster->Shutdown();
      return interrupted();
    }
    if (std::string exited = cluster->FirstExited(); !exited.empty()) {
      return fail(absl::UnavailableError(exited));
    }
    grpc::ClientContext call;
    client.Prepare(&call);
    v1::ListWorkersResponse resp;
    grpc::Status s = client.stub().ListWorkers(&call, v1::ListWorkersRequest(), &resp);
    if (!s.ok() && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return fail(client.Convert(s));
    }
    int attached = 0;
    for (const v1::WorkerStatus& w : resp.workers()) {
      if (w.attached() && w.state() != v1::WORKER_STATE_DEAD) ++attached;
    }
    if (attached >= f.workers) break;
    if (absl::Now() >= deadline) {
      return fail(absl::DeadlineExceededError(
          absl::StrCat("only ", attached, " of ", f.workers, " workers attached within ",
                       absl::FormatDuration(start_timeout), " (--start-timeout)")));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  log << f.workers << " worker" << (f.workers == 1 ? "" : "s") << " attached; submitting "
      << spec.name() << "\n";

  v1::Job job;
  {
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    req.set_request_id("chronosctl-local-run");
    if (absl::Status s = client.Call(&Stub::SubmitJob, req, &job); !s.ok()) return fail(s);
  }

  std::vector<v1::IterationRecord> seen;
  WatchOptions w;
  w.progress = &log;
  w.interactive = ctx.run().err_is_tty;
  w.canceller = &canceller;
  w.on_update = [&seen](const v1::JobUpdate& u) {
    if (u.has_iteration()) seen.push_back(u.iteration());
  };
  absl::StatusOr<v1::Job> done = WatchUntilTerminal(client, job.metadata().name(), w);
  if (!done.ok()) {
    if (done.status().code() == absl::StatusCode::kCancelled) {
      cluster->Shutdown();
      log << "data and logs in " << cluster->data_dir() << "\n";
      return interrupted();
    }
    if (std::string exited = cluster->FirstExited(); !exited.empty()) {
      return fail(
          absl::Status(done.status().code(), absl::StrCat(done.status().message(), "; ", exited)));
    }
    return fail(done.status());
  }

  // The stored history is authoritative (the stream may have started after
  // the first iteration was recorded); fall back to what the stream showed.
  std::vector<v1::IterationRecord> iterations = seen;
  {
    v1::GetJobRequest req;
    req.set_name(job.metadata().name());
    req.set_include_iterations(true);
    v1::Job full;
    if (client.Call(&Stub::GetJob, req, &full).ok() && !full.iterations().empty()) {
      iterations.assign(full.iterations().begin(), full.iterations().end());
    }
  }
  cluster->Shutdown();

  const bool succeeded = done->status().state() == v1::JOB_STATE_SUCCEEDED;
  if (IsStructured(format)) {
    PrintJson(ctx.out(), Summary(*done, iterations, cluster.get()), format);
  } else {
    PrintSummaryTable(ctx.out(), *done, iterations);
  }
  if (!succeeded) {
    keep = true;
    log << "logs kept in " << cluster->data_dir() << "/logs\n";
  }
  if (!keep) {
    std::error_code ec;
    std::filesystem::remove_all(cluster->data_dir(), ec);
  } else if (succeeded) {
    log << "data and logs in " << cluster->data_dir() << "\n";
  }
  return ExitCodeForJobState(done->status().state());
}

}  // namespace

void AddLocalCommands(CLI::App& app, std::vector<Command>* commands) {
  CLI::App* local = app.add_subcommand("local", "Run Chronos on this machine");
  local->require_subcommand(1);
  auto f = std::make_shared<LocalRunFlags>();
  CLI::App* run = local->add_subcommand(
      "run",
      "Start a coordinator and N workers here (CPU, or one GPU each), run one job to its end, "
      "print a summary, "
      "stop everything; exit with the job's outcome");
  run->add_option("-f,--file", f->file, "Job spec YAML file")->required();
  run->add_option("--workers", f->workers, "Worker processes to start (>= pipeline x data)")
      ->required();
  run->add_option("--data-dir", f->data_dir,
                  "Folder for the coordinator's store and the logs (default: a temporary "
                  "folder, removed after a successful run)");
  run->add_flag("--keep", f->keep, "Keep the temporary data folder after a successful run");
  run->add_option("--bin-dir", f->bin_dir,
                  "Folder holding chronos-coordinator and chronos-worker (default: next to "
                  "chronosctl, else PATH)");
  run->add_option("--threads", f->threads, "Compute threads per worker (default: cores / workers)");
  run->add_option("--device", f->device,
                  "cpu, or cuda: worker i runs on GPU i (one GPU per worker)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  run->add_option("--start-timeout", f->start_timeout,
                  "How long to wait for the daemons to start and attach")
      ->capture_default_str();
  commands->push_back({run, [f](CommandContext& ctx) { return RunLocal(ctx, *f); }});
}

}  // namespace chronos::client
