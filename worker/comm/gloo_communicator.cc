// The only translation unit that includes ProcessGroupGloo.hpp, and with it
// Debian's Gloo headers (the torch wheel ships none). It touches Gloo types
// only through pointers (a transport device made and used inside LibTorch),
// so the layouts of Gloo's classes in those headers never matter here; see
// docs/architecture.md, "Gloo headers".
#include "worker/comm/gloo_communicator.h"

#include <algorithm>
#include <chrono>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "absl/time/time.h"

namespace chronos::worker {

absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> CreateGlooCommunicator(
    c10::intrusive_ptr<c10d::Store> store, const GlooCommunicatorOptions& o) {
  std::shared_ptr<::gloo::transport::Device> device;
  auto make = [&](c10::intrusive_ptr<c10d::Store> group_store, int rank,
                  int size) -> c10::intrusive_ptr<c10d::Backend> {
    if (!device) {
      device = c10d::ProcessGroupGloo::createDeviceForHostname(o.hostname);
    }
    // Gloo needs a finite timeout; a day stands in for "forever".
    auto opts = c10d::ProcessGroupGloo::Options::create(
        std::chrono::milliseconds(absl::ToInt64Milliseconds(std::min(o.timeout, absl::Hours(24)))));
    opts->devices.push_back(device);
    opts->threads = 1;
    return c10::make_intrusive<c10d::ProcessGroupGloo>(group_store, rank, size, opts);
  };
  return ProcessGroupCommunicator::Create(std::move(store), o, "Gloo",
                                          /*stream_ordered=*/false, make);
}

}  // namespace chronos::worker
