#include "worker/stage_launcher.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <algorithm>
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
#if CHRONOS_WITH_CUDA
#include "worker/cuda/cuda_runtime.h"
#include "worker/cuda/nccl_communicator.h"
#endif

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

int64_t PinnedPoolBytes(int64_t requested) {
  if (requested > 0) return requested;
#if CHRONOS_WITH_CUDA
  // Half of the host's memory, shared by the GPUs this process sees.
  const int64_t host =
      static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  return std::max<int64_t>(int64_t{1} << 30, host / 2 / std::max(1, CudaDeviceCount()));
#else
  return 0;
#endif
}

absl::StatusOr<int> CudaIndex(const std::string& device) {
  if (device == "cpu") return -1;
  int index = 0;
  if (!absl::StartsWith(device, "cuda:") || !absl::SimpleAtoi(device.substr(5), &index) ||
      index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--device: '", device, "' is neither cpu nor cuda:N"));
  }
  return index;
}

absl::StatusOr<std::unique_ptr<StageRunner>> LaunchStage(StageLaunchOptions options) {
  if (options.store == nullptr) {
    return absl::InvalidArgumentError("LaunchStage: no rendezvous store");
  }
  const StageRunnerOptions& ro = options.runner;
  CHRONOS_ASSIGN_OR_RETURN(const int cuda_index, CudaIndex(ro.device_name));
  ProcessGroupOptions co;
  co.pipeline = ro.schedule.num_devices;
  co.data_parallel = std::max(1, ro.spec.parallel().data());
  co.world_rank = ro.data_rank * co.pipeline + ro.device;
  co.key_prefix = std::string(absl::StripSuffix(options.store_prefix, "/"));
  if (co.key_prefix.empty()) co.key_prefix = "chronos";
  co.hostname = options.hostname;
  co.timeout = options.rendezvous_timeout;
  co.cuda_device = cuda_index;
  StageRunnerExtras extras;
  extras.comm_timeout = options.comm_timeout;
  if (cuda_index >= 0) {
#if CHRONOS_WITH_CUDA
    CudaRuntimeOptions rt;
    rt.device = cuda_index;
    rt.pinned_pool_bytes = PinnedPoolBytes(options.pinned_pool_bytes);
    CHRONOS_ASSIGN_OR_RETURN(extras.device_runtime, NewCudaRuntime(rt));
#else
    return absl::FailedPreconditionError(
        absl::StrCat("--device ", ro.device_name,
                     ": this chronos-worker was built without CUDA (configure with "
                     "-DCHRONOS_WITH_CUDA=ON, as scripts/build.sh does)"));
#endif
  }
  std::unique_ptr<ProcessGroupCommunicator> comm;
  try {
    c10::intrusive_ptr<c10d::Store> store =
        NewKvC10dStore(options.store, options.rendezvous_timeout);
#if CHRONOS_WITH_CUDA
    if (cuda_index >= 0) {
      CHRONOS_ASSIGN_OR_RETURN(comm, CreateNcclCommunicator(store, co));
    } else {
      CHRONOS_ASSIGN_OR_RETURN(comm, CreateGlooCommunicator(store, co));
    }
#else
    CHRONOS_ASSIGN_OR_RETURN(comm, CreateGlooCommunicator(store, co));
#endif
  } catch (...) {
    return StatusFromCurrentException(absl::StrCat("device ", ro.device, ": transport rendezvous"));
  }
  return CreateStageRunner(std::move(options.runner), std::move(comm), std::move(extras));
}

absl::StatusOr<DeviceDescription> DescribeDevice(const std::string& device) {
  DeviceDescription d;
  d.device = device;
  CHRONOS_ASSIGN_OR_RETURN(const int index, CudaIndex(device));
  if (index < 0) {
    d.device_name = CpuModelName();
    return d;
  }
#if CHRONOS_WITH_CUDA
  CHRONOS_ASSIGN_OR_RETURN(CudaDeviceInfo info, DescribeCudaDevice(index));
  d.device_name = info.name;
  d.memory_bytes = info.memory_bytes;
  d.cuda_index = index;
  d.uuid = info.uuid;
  return d;
#else
  return absl::FailedPreconditionError(
      absl::StrCat("--device ", device,
                   ": this chronos-worker was built without CUDA (configure with "
                   "-DCHRONOS_WITH_CUDA=ON, as scripts/build.sh does)"));
#endif
}

}  // namespace chronos::worker
