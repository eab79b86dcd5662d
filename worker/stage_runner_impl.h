// The StageRunner implementation's extra entry point: the knobs that tests
// and benchmarks need but a worker daemon leaves at their defaults (the
// transport timeout, a hook that sees the gradients before the optimizer
// step). StageRunner::Create is CreateStageRunner with default extras.
#ifndef CHRONOS_WORKER_STAGE_RUNNER_IMPL_H_
#define CHRONOS_WORKER_STAGE_RUNNER_IMPL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/device_runtime.h"
#include "worker/host_copier.h"
#include "worker/model/chunk.h"
#include "worker/stage_runner.h"

namespace chronos::worker {

struct StageRunnerExtras {
  // Bounds every wait for a receive or a send.
  absl::Duration comm_timeout = absl::Minutes(5);
  // Called on the Run() thread when OPTIM_STEP is reached, with this
  // device's parameters: their `grad` holds the iteration's accumulated
  // (and data-parallel summed) gradients, not yet clipped or zeroed.
  std::function<void(int64_t iteration, const std::vector<Param*>& params)> before_optim_step;
  // How offloads reach host memory when there is no device runtime (a
  // test's copier); null = SyncHostCopier. A device runtime brings its own.
  std::shared_ptr<HostCopier> host_copier;
  // A GPU stage's runtime (worker/cuda/cuda_runtime.h): Init and Run enter
  // it (device and compute stream), AdamW keeps offloaded state in its
  // pinned pool, and reports carry its memory figures. Null on CPU.
  std::shared_ptr<DeviceRuntime> device_runtime;
};

absl::StatusOr<std::unique_ptr<StageRunner>> CreateStageRunner(StageRunnerOptions options,
                                                               std::unique_ptr<Communicator> comm,
                                                               StageRunnerExtras extras);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STAGE_RUNNER_IMPL_H_
