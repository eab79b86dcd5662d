// The GPU transport: ProcessGroupCommunicator over c10d's ProcessGroupNCCL.
// Stage-to-stage SEND/RECV are NCCL point-to-point operations on NCCL's own
// streams (one per peer pair), ordered after the compute stream's work that
// produced the tensor; a wait makes the compute stream wait on the
// operation's event, never the host. The NCCL unique id of each group is
// exchanged through the store, which is the coordinator's (as Gloo's
// addresses are). NCCL's watchdog enforces `timeout` and aborts a group's
// communicators when an operation hangs.
#ifndef CHRONOS_WORKER_CUDA_NCCL_COMMUNICATOR_H_
#define CHRONOS_WORKER_CUDA_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "worker/comm/process_group_communicator.h"

namespace chronos::worker {

// `options.cuda_device` is the device every group is bound to.
absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> CreateNcclCommunicator(
    c10::intrusive_ptr<c10d::Store> store, const ProcessGroupOptions& options);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_CUDA_NCCL_COMMUNICATOR_H_
