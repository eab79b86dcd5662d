#include "worker/cuda/nccl_communicator.h"

#include <chrono>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace chronos::worker {

absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> CreateNcclCommunicator(
    c10::intrusive_ptr<c10d::Store> store, const ProcessGroupOptions& o) {
  if (o.cuda_device < 0) {
    return absl::InvalidArgumentError("NCCL communicator: no CUDA device given");
  }
  const at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(o.cuda_device));
  auto make = [&](c10::intrusive_ptr<c10d::Store> group_store, int rank,
                  int size) -> c10::intrusive_ptr<c10d::Backend> {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout =
        std::chrono::milliseconds(absl::ToInt64Milliseconds(std::min(o.timeout, absl::Hours(24))));
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_store, rank, size, opts);
    // Bound to its device, the group never guesses the device from the
    // rank (several workers share a node, one GPU each).
    pg->setBoundDeviceId(device);
    return pg;
  };
  return ProcessGroupCommunicator::Create(std::move(store), o, "NCCL",
                                          /*stream_ordered=*/true, make);
}

}  // namespace chronos::worker
