// The CPU transport: ProcessGroupCommunicator over c10d's ProcessGroupGloo
// (TCP). One Gloo device (one listening socket on `hostname`) serves the
// three groups; collectives are issued and awaited one at a time.
#ifndef CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_
#define CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "worker/comm/process_group_communicator.h"

namespace chronos::worker {

using GlooCommunicatorOptions = ProcessGroupOptions;

// See ProcessGroupCommunicator::Create.
absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> CreateGlooCommunicator(
    c10::intrusive_ptr<c10d::Store> store, const GlooCommunicatorOptions& options);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_
