// Point-to-point and collective transport between the devices of a job:
// Gloo (c10d ProcessGroupGloo) on CPU, NCCL on GPU, loopback for stage
// emulation. Ranks: world rank = data_rank * pipeline + device.
//
// Send/Recv are asynchronous and return a Work handle (c10d's contract minus
// exceptions). Messages between a pair of ranks are matched by tag.
// Thread-compatible: one executor thread issues operations; Abort may come
// from any thread.
#ifndef CHRONOS_WORKER_COMM_COMMUNICATOR_H_
#define CHRONOS_WORKER_COMM_COMMUNICATOR_H_

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace chronos::worker {

class Work {
 public:
  virtual ~Work() = default;
  virtual bool IsCompleted() = 0;
  // Blocks until done or `timeout`; kDeadlineExceeded on timeout,
  // kUnavailable when the peer or the transport failed.
  virtual absl::Status Wait(absl::Duration timeout) = 0;
};

// Which ranks a collective spans.
enum class Group {
  kWorld,     // every rank of the job
  kPipeline,  // the ranks of this data-parallel replica's pipeline
  kData,      // the same device across data-parallel replicas
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int world_rank() const = 0;
  virtual int world_size() const = 0;

  // Sends `t` (contiguous; kept alive by the Work) to pipeline device `peer`
  // of the same replica.
  virtual std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) = 0;
  // Receives into `t` (preallocated with the right shape and dtype).
  virtual std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) = 0;
  // In-place sum over `group`.
  virtual absl::Status AllReduceSum(std::vector<at::Tensor>& tensors, Group group) = 0;
  virtual absl::Status Barrier(Group group) = 0;
  // Aborts every operation in flight, from any thread: a Wait blocked on a
  // peer that hung returns kUnavailable at once, and later operations fail
  // at once. For a stopped attempt, so that it never holds up the next one.
  // The communicator is unusable afterwards.
  virtual void Abort() {}
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_COMMUNICATOR_H_
