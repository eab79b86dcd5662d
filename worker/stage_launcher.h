// The worker daemon's one door into the engine: rendezvous through a
// KeyValueStore, build the Gloo (or, in a GPU build, the device's)
// communicator and the StageRunner for one assignment, and probe the
// device. Torch-free header, so the daemon's gRPC and metrics translation
// units never include LibTorch (they compile in seconds instead of ~30 s).
//
// Thread-safe: LaunchStage may run on any thread; it blocks until every
// rank of the job has joined or the rendezvous times out.
#ifndef CHRONOS_WORKER_STAGE_LAUNCHER_H_
#define CHRONOS_WORKER_STAGE_LAUNCHER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/kv_store.h"
#include "worker/stage_runner.h"

namespace chronos::worker {

struct StageLaunchOptions {
  StageRunnerOptions runner;
  // Rendezvous store (the coordinator's, over gRPC) and the per-attempt key
  // prefix the coordinator assigned (Assignment.store_prefix).
  std::shared_ptr<KeyValueStore> store;
  std::string store_prefix;
  // Address this rank's transport binds to and advertises to its peers.
  std::string hostname = "127.0.0.1";
  // Bounds the rendezvous and each collective.
  absl::Duration rendezvous_timeout = absl::Minutes(5);
  // Bounds each stage-to-stage receive or send.
  absl::Duration comm_timeout = absl::Minutes(5);
  // GPU stages: bound on the pinned host pool; 0 = half of the host's
  // memory divided among its GPUs.
  int64_t pinned_pool_bytes = 0;
};

// kDeadlineExceeded / kUnavailable when the rendezvous fails (a peer never
// joined); the StageRunner's Create errors otherwise. LibTorch exceptions
// never escape.
absl::StatusOr<std::unique_ptr<StageRunner>> LaunchStage(StageLaunchOptions options);

struct DeviceDescription {
  std::string device;        // "cpu", "cuda:0"
  std::string device_name;   // marketing name, or the CPU model
  int64_t memory_bytes = 0;  // HBM on GPU; 0 on CPU (the host's memory)
  int cuda_index = -1;       // N of cuda:N; -1 on CPU
  std::string uuid;          // GPU-..., as DCGM labels it; "" on CPU
};

// The bound of a GPU stage's pinned host pool: `requested` (--pinned-pool)
// when > 0, else half of the host's memory shared by the GPUs this process
// sees (at least 1 GiB); 0 in a build without CUDA.
int64_t PinnedPoolBytes(int64_t requested);

// "cuda:N" -> N; -1 for "cpu"; kInvalidArgument naming --device for
// anything else. Reads the string only (no device is opened).
absl::StatusOr<int> CudaIndex(const std::string& device);

// kInvalidArgument for an unknown device string, kFailedPrecondition for a
// CUDA device in a build without CUDA or one that does not exist.
absl::StatusOr<DeviceDescription> DescribeDevice(const std::string& device);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STAGE_LAUNCHER_H_
