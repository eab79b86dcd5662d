// chronos-worker: parses flags into WorkerOptions, runs the WorkerDaemon
// until SIGTERM or SIGINT, then shuts it down. Prints one machine-readable
// line once its endpoints listen (chronosctl local run and the tests wait
// for it):
//   chronos-worker listening metrics=HOST:PORT health=HOST:PORT
// With --check-flags it parses and checks every flag, says what is wrong
// naming the flag, and exits (0: all good; 2: a bad flag) without reading
// the files the flags name or opening the device.
#include <glog/logging.h>
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/size.h"
#include "rpc/credentials.h"
#include "rpc/stop_signals.h"
#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_options.h"

#ifndef CHRONOS_VERSION
#define CHRONOS_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  // Activations are allocated and freed every iteration; with glibc's
  // default thresholds the large blocks go back to the kernel each time and
  // fault back in on the next (2x iteration time at small shapes, measured
  // by chronos-bench-executor). Keep them in the process.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  chronos::worker::WorkerOptions o;
  o.version = CHRONOS_VERSION;
  std::string token_file;
  std::string host_memory;
  int metrics_port = -1;
  double rendezvous_timeout_s = 300;
  double comm_timeout_s = 300;

  CLI::App app{"Chronos worker: runs pipeline stages pushed by the coordinator"};
  app.add_option("--coordinator", o.coordinator, "coordinator gRPC address HOST:PORT")
      ->capture_default_str();
  app.add_option("--token-file", token_file, "file holding the bearer token (or set --token)");
  app.add_option("--token", o.token, "bearer token (prefer --token-file)");
  app.add_option("--tls-ca", o.tls_ca_file, "PEM CA bundle: talk TLS to the coordinator");
  app.add_flag("--tls", o.tls, "talk TLS to the coordinator with the system roots");
  app.add_option("--tls-server-name", o.tls_server_name,
                 "expected name in the coordinator's certificate");
  app.add_option("--metrics-listen", o.metrics_listen,
                 "Prometheus /metrics address HOST:PORT (port 0: any; '' = off)")
      ->capture_default_str();
  app.add_option("--metrics-port", metrics_port,
                 "shorthand for --metrics-listen 0.0.0.0:PORT (0: any)");
  app.add_option("--listen,--health-listen", o.health_listen,
                 "gRPC health service address HOST:PORT (port 0: any; '' = off)")
      ->capture_default_str();
  app.add_option("--device", o.device, "cpu or cuda:N")->capture_default_str();
  app.add_option("--name", o.name,
                 "stable worker name, one per live worker (default: the host name, "
                 "plus -cudaN with --device cuda:N)");
  app.add_option("--advertise-host", o.advertise_host,
                 "address other workers reach this one at (transport)")
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir,
                 "base directory for jobs' relative checkpoint directories");
  std::string pinned_pool;
  app.add_option("--pinned-pool", pinned_pool,
                 "GPU: bound on pinned host memory for offloads, e.g. 32GiB "
                 "(default: half of the host's memory shared by its GPUs)");
  app.add_option("--host-memory", host_memory,
                 "host memory to advertise, e.g. 64GiB (default: measured)");
  app.add_option("--threads", o.threads, "intra-op compute threads (0: LibTorch's default)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--rendezvous-timeout-seconds", rendezvous_timeout_s,
                 "how long a job's workers wait for each other")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  app.add_option("--comm-timeout-seconds", comm_timeout_s,
                 "how long a stage waits for one message from a peer")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  bool check_flags = false;
  app.add_flag("--check-flags", check_flags,
               "check every flag and exit: 0 when all are good, 2 naming the first bad one "
               "(reads no file, opens no device, binds no port)");
  app.set_version_flag("--version", CHRONOS_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (metrics_port >= 0) {
    if (metrics_port > 65535) {
      std::cerr << "chronos-worker: --metrics-port must be in [0, 65535]\n";
      return 2;
    }
    o.metrics_listen = absl::StrCat("0.0.0.0:", metrics_port);
  }
  // A positive size such as 64GiB; "" leaves `out` as it is.
  auto parse_size = [](const char* flag, const std::string& text, int64_t* out) {
    if (text.empty()) return true;
    absl::StatusOr<int64_t> bytes = chronos::ParseByteSize(text);
    if (!bytes.ok() || *bytes <= 0) {
      std::cerr << "chronos-worker: " << flag << ": '" << text << "' is not a size like 64GiB\n";
      return false;
    }
    *out = *bytes;
    return true;
  };
  if (!parse_size("--host-memory", host_memory, &o.host_memory_bytes) ||
      !parse_size("--pinned-pool", pinned_pool, &o.pinned_pool_bytes)) {
    return 2;
  }
  o.rendezvous_timeout = absl::Seconds(rendezvous_timeout_s);
  o.comm_timeout = absl::Seconds(comm_timeout_s);
  if (absl::Status st = chronos::worker::WorkerDaemon::CheckOptions(o); !st.ok()) {
    std::cerr << "chronos-worker: " << st.message() << "\n";
    return 2;
  }
  if (check_flags) {
    std::cout << "chronos-worker: flags OK\n";
    return 0;
  }

  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  if (absl::Status st = chronos::rpc::LoadTokenFileFlag(token_file, &o.token); !st.ok()) {
    std::cerr << "chronos-worker: " << st.message() << "\n";
    return 2;
  }

  const chronos::rpc::StopSignals stop_signals = chronos::rpc::StopSignals::Block();

  // A worker that must stop for good wakes the signal wait below.
  o.on_fatal = [](const absl::Status&) { chronos::rpc::StopSignals::RequestStop(); };
  chronos::worker::WorkerDaemon daemon(o);
  absl::Status started = daemon.Start();
  if (!started.ok()) {
    std::cerr << "chronos-worker: " << started.message() << "\n";
    return 1;
  }
  std::printf("chronos-worker listening metrics=%s health=%s\n", daemon.metrics_address().c_str(),
              daemon.health_address().c_str());
  std::fflush(stdout);

  const int signal = stop_signals.Wait();
  LOG(INFO) << "received signal " << signal << "; shutting down";
  daemon.Shutdown();
  if (absl::Status fatal = daemon.fatal(); !fatal.ok()) {
    std::cerr << "chronos-worker: " << fatal.message() << "\n";
    return 1;
  }
  return 0;
}
