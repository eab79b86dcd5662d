#include "worker/stage_launcher.h"

#include <ATen/ATen.h>

#include <fstream>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/kv_c10d_store.h"
#include "worker/executor.h"
#include "worker/stage_runner_impl.h"

namespace chronos::worker {
namespace {

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
  }
  return "cpu";
}

}  // namespace

absl::StatusOr<std::unique_ptr<StageRunner>> LaunchStage(
    StageLaunchOptions options) {
  if (options.store == nullptr) {
    return absl::InvalidArgumentError("LaunchStage: no rendezvous store");
  }
  const StageRunnerOptions& ro = options.runner;
  if (absl::StartsWith(ro.device_name, "cuda")) {
    return absl::FailedPreconditionError(
        "this worker has no NCCL transport; GPU jobs need the GPU build "
        "(CHRONOS_WITH_CUDA)");
  }
  GlooCommunicatorOptions co;
  co.pipeline = ro.schedule.num_devices;
  co.data_parallel = std::max(1, ro.spec.parallel().data());
  co.world_rank = ro.data_rank * co.pipeline + ro.device;
  co.key_prefix = std::string(absl::StripSuffix(options.store_prefix, "/"));
  if (co.key_prefix.empty()) co.key_prefix = "chronos";
  co.hostname = options.hostname;
  co.timeout = options.rendezvous_timeout;
  std::unique_ptr<GlooCommunicator> comm;
  try {
    c10::intrusive_ptr<c10d::Store> store =
        NewKvC10dStore(options.store, options.rendezvous_timeout);
    CHRONOS_ASSIGN_OR_RETURN(comm, GlooCommunicator::Create(store, co));
  } catch (...) {
    return StatusFromCurrentException(
        absl::StrCat("device ", ro.device, ": transport rendezvous"));
  }
  StageRunnerExtras extras;
  extras.comm_timeout = options.comm_timeout;
  return CreateStageRunner(std::move(options.runner), std::move(comm),
                           std::move(extras));
}

absl::StatusOr<DeviceDescription> DescribeDevice(const std::string& device) {
  DeviceDescription d;
  d.device = device;
  if (device == "cpu") {
    d.device_name = CpuModelName();
    return d;
  }
  int index = 0;
  if (!absl::StartsWith(device, "cuda:") ||
      !absl::SimpleAtoi(device.substr(5), &index) || index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--device: '", device, "' is neither cpu nor cuda:N"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "--device ", device,
      ": this chronos-worker is a CPU build (rebuild with "
      "-DCHRONOS_WITH_CUDA=ON for GPUs)"));
}

}  // namespace chronos::worker
