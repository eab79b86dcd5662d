// chronos-coordinator: parses flags into CoordinatorOptions, runs the
// Coordinator until SIGTERM or SIGINT, then shuts it down gracefully.
// Prints one machine-readable line once serving:
//   chronos-coordinator listening grpc=HOST:PORT metrics=HOST:PORT
// With --check-flags it parses and checks every flag, says what is wrong
// naming the flag, and exits (0: all good; 2: a bad flag) without reading
// the files and directories the flags name (they exist where the daemon
// runs, not where its command line is checked).
#include <glog/logging.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"
#include "rpc/credentials.h"
#include "rpc/stop_signals.h"

#ifndef CHRONOS_VERSION
#define CHRONOS_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  chronos::coordinator::CoordinatorOptions options;
  options.version = CHRONOS_VERSION;
  std::string token_file;
  int heartbeat_interval_ms = 5000;
  int heartbeat_misses = 3;
  double shutdown_grace_seconds = 10;

  CLI::App app{"Chronos coordinator: job store, worker registry, scheduling"};
  app.add_option("--listen", options.listen, "gRPC address HOST:PORT (port 0: any)")
      ->capture_default_str();
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Prometheus /metrics address HOST:PORT (port 0: any; '' = off)")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir, "directory of the job store (SQLite); required")
      ->required();
  app.add_option("--token-file", token_file, "file holding the bearer token every RPC must carry");
  app.add_option("--allowed-data-root", options.allowed_data_roots,
                 "jobs may only read data.path under this directory (repeatable; default: "
                 "anywhere); workers check again");
  app.add_option("--allowed-checkpoint-root", options.allowed_checkpoint_roots,
                 "jobs may only write training.checkpoint_dir under this directory (repeatable; "
                 "default: anywhere); workers check again");
  app.add_option("--tls-cert", options.tls_cert_file, "PEM certificate chain");
  app.add_option("--tls-key", options.tls_key_file, "PEM private key");
  app.add_option("--heartbeat-interval-ms", heartbeat_interval_ms, "interval workers heartbeat at")
      ->capture_default_str()
      ->check(CLI::Range(10, 3600000));
  app.add_option("--heartbeat-misses", heartbeat_misses,
                 "missed heartbeats after which a worker is dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  int restart_backoff_ms = 1000;
  int recovery_wait_ms = 10000;
  app.add_option("--max-restarts", options.recovery.max_restarts,
                 "restarts a job gets after worker faults before it fails")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--restart-backoff-ms", restart_backoff_ms,
                 "wait before a job's first restart; doubles per restart, at most 60 s")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));
  app.add_option("--recovery-wait-ms", recovery_wait_ms,
                 "how long a recovering job waits for its full pipeline width before it "
                 "is re-planned onto fewer stages or data-parallel replicas")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));
  double plan_deadline_seconds = absl::ToDoubleSeconds(options.planning.deadline);
  app.add_option("--plan-deadline-seconds", plan_deadline_seconds,
                 "longest a job's plan may take; a longer one fails the job naming the fields "
                 "that make it big")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--planner-threads", options.planning.threads,
                 "threads that plan submitted jobs in the background (each plan also uses "
                 "every core)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--shutdown-grace-seconds", shutdown_grace_seconds,
                 "time calls get to finish on SIGTERM")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  bool check_flags = false;
  app.add_flag("--check-flags", check_flags,
               "check every flag and exit: 0 when all are good, 2 naming the first bad one "
               "(reads no file, binds no port)");
  app.set_version_flag("--version", CHRONOS_VERSION);
  CLI11_PARSE(app, argc, argv);

  options.heartbeat_interval = absl::Milliseconds(heartbeat_interval_ms);
  options.recovery.backoff = absl::Milliseconds(restart_backoff_ms);
  options.recovery.wait_for_workers = absl::Milliseconds(recovery_wait_ms);
  options.heartbeat_misses = heartbeat_misses;
  options.planning.deadline = absl::Seconds(plan_deadline_seconds);
  if (absl::Status st = chronos::coordinator::Coordinator::CheckOptions(options); !st.ok()) {
    std::cerr << "chronos-coordinator: " << st.message() << "\n";
    return 2;
  }
  if (check_flags) {
    std::cout << "chronos-coordinator: flags OK\n";
    return 0;
  }

  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  auto directories_exist = [](const char* flag, const std::vector<std::string>& dirs) {
    for (const std::string& dir : dirs) {
      std::error_code ec;
      if (!std::filesystem::is_directory(dir, ec)) {
        std::cerr << "chronos-coordinator: " << flag << " " << dir << ": not a directory\n";
        return false;
      }
    }
    return true;
  };
  if (!directories_exist("--allowed-data-root", options.allowed_data_roots) ||
      !directories_exist("--allowed-checkpoint-root", options.allowed_checkpoint_roots)) {
    return 2;
  }
  if (absl::Status st = chronos::rpc::LoadTokenFileFlag(token_file, &options.token); !st.ok()) {
    std::cerr << "chronos-coordinator: " << st.message() << "\n";
    return 2;
  }

  const chronos::rpc::StopSignals stop_signals = chronos::rpc::StopSignals::Block();

  absl::StatusOr<std::unique_ptr<chronos::coordinator::Coordinator>> coordinator =
      chronos::coordinator::Coordinator::Create(options);
  if (!coordinator.ok()) {
    std::cerr << "chronos-coordinator: " << coordinator.status().message() << "\n";
    return 1;
  }
  absl::Status started = (*coordinator)->Start();
  if (!started.ok()) {
    std::cerr << "chronos-coordinator: " << started.message() << "\n";
    return 1;
  }
  std::printf("chronos-coordinator listening grpc=%s metrics=%s\n",
              (*coordinator)->grpc_address().c_str(), (*coordinator)->metrics_address().c_str());
  std::fflush(stdout);

  const int signal = stop_signals.Wait();
  LOG(INFO) << "received signal " << signal;
  (*coordinator)->Shutdown(absl::Seconds(shutdown_grace_seconds));
  coordinator->reset();
  return 0;
}
