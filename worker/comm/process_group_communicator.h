// Communicator over c10d process groups (c10d::Backend): Gloo on CPU
// (worker/comm/gloo_communicator.h), NCCL on GPU
// (worker/cuda/nccl_communicator.h). One instance per rank holds three
// groups: the world, this replica's pipeline (world ranks r*p .. r*p+p-1) and
// this device's data-parallel group (world ranks device + k*p). Each group
// rendezvouses under its own key prefix of the store (the coordinator's).
//
// Waits: a host-blocking backend (Gloo) waits with the timeout; a
// stream-ordered backend (NCCL) makes the current CUDA stream wait for the
// operation and returns at once, and the backend's own watchdog enforces the
// timeout (it aborts the communicators of a group whose operation hangs).
//
// Failure model: Gloo turns a timed-out point-to-point wait into an error on
// the whole pipeline group's connections, so after a Send/Recv Wait returns
// kDeadlineExceeded the communicator must be discarded and the job rebuilt
// (which is what the coordinator does when a stage stalls).
//
// Thread-compatible, like Communicator. c10d headers stay in the .cc files.
#ifndef CHRONOS_WORKER_COMM_PROCESS_GROUP_COMMUNICATOR_H_
#define CHRONOS_WORKER_COMM_PROCESS_GROUP_COMMUNICATOR_H_

#include <c10/util/intrusive_ptr.h>

#include <functional>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"

namespace c10d {
class Backend;
class Store;
class Work;
}  // namespace c10d

namespace chronos::worker {

struct ProcessGroupOptions {
  int world_rank = 0;
  int pipeline = 1;       // p: devices per pipeline replica
  int data_parallel = 1;  // d: replicas
  // Store keys are "<prefix>/world/...", "<prefix>/pipe<r>/...",
  // "<prefix>/data<device>/...": make it unique per job incarnation so a
  // restarted job never reads a stale address.
  std::string key_prefix = "chronos";
  // Address this rank's Gloo device binds to and advertises to its peers.
  std::string hostname = "127.0.0.1";
  // NCCL: the CUDA device index; Gloo ignores it.
  int cuda_device = -1;
  // Bounds rendezvous and each collective.
  absl::Duration timeout = absl::Minutes(5);
};

// Makes one group's backend: (store under the group's prefix, rank in the
// group, group size). May throw; Create turns exceptions into statuses.
using BackendFactory = std::function<c10::intrusive_ptr<c10d::Backend>(
    c10::intrusive_ptr<c10d::Store> store, int rank, int size)>;

class ProcessGroupCommunicator : public Communicator {
 public:
  // Blocks until every member of the three groups has joined (all ranks must
  // call it; the groups are created in the same order everywhere).
  // kInvalidArgument for inconsistent options, kDeadlineExceeded or
  // kUnavailable when rendezvous fails. `name` ("Gloo", "NCCL") prefixes
  // errors; `stream_ordered` selects the wait semantics above.
  static absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> Create(
      c10::intrusive_ptr<c10d::Store> store, const ProcessGroupOptions& options,
      const std::string& name, bool stream_ordered, const BackendFactory& make_backend);
  ~ProcessGroupCommunicator() override;

  int world_rank() const override { return o_.world_rank; }
  int world_size() const override { return o_.pipeline * o_.data_parallel; }
  int device() const { return o_.world_rank % o_.pipeline; }
  int data_rank() const { return o_.world_rank / o_.pipeline; }

  // Gloo p2p: IsCompleted() turns true only once Wait has observed the
  // completion (c10d tracks it no other way). NCCL's Work queries its event.
  std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) override;
  std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) override;
  // Tensors of one dtype are flattened into a single all-reduce.
  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors, Group group) override;
  absl::Status Barrier(Group group) override;
  // Aborts the point-to-point operations in flight (c10d Work::abort) and
  // the groups (Backend::abort: NCCL's communicators); later calls fail.
  void Abort() override;

 private:
  struct Groups;  // the c10d process groups
  ProcessGroupCommunicator(const ProcessGroupOptions& o, std::string name, bool stream_ordered,
                           std::unique_ptr<Groups> groups);

  absl::Status CheckPeer(const at::Tensor& t, int peer, int tag) const;
  // Send (`send`) or Recv over the pipeline group, tracked for Abort.
  std::unique_ptr<Work> PointToPoint(bool send, const at::Tensor& t, int peer, int tag);

  // Remembers a Send/Recv in flight so Abort can reach it; drops finished
  // ones. Fails (kUnavailable) once aborted.
  absl::Status Track(const c10::intrusive_ptr<c10d::Work>& work);

  ProcessGroupOptions o_;
  std::string name_;
  absl::Mutex mu_;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<c10::intrusive_ptr<c10d::Work>> in_flight_ ABSL_GUARDED_BY(mu_);
  bool stream_ordered_;
  std::unique_ptr<Groups> groups_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_PROCESS_GROUP_COMMUNICATOR_H_
