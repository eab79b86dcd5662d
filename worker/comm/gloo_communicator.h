// Communicator over c10d's ProcessGroupGloo (CPU tensors, TCP). One instance
// per rank holds three process groups: the world, this replica's pipeline
// (world ranks r*p .. r*p+p-1) and this device's data-parallel group (world
// ranks device + k*p). Each group rendezvouses under its own key prefix.
//
// Failure model: Gloo turns a timed-out point-to-point wait into an error on
// the whole pipeline group's connections, so after a Send/Recv Wait returns
// kDeadlineExceeded the communicator must be discarded and the job rebuilt
// (which is what the coordinator does when a stage stalls).
//
// Thread-compatible, like Communicator. c10d headers stay in the .cc.
#ifndef CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_
#define CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_

#include <c10/util/intrusive_ptr.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"

namespace c10d {
class Store;
}  // namespace c10d

namespace chronos::worker {

struct GlooCommunicatorOptions {
  int world_rank = 0;
  int pipeline = 1;       // p: devices per pipeline replica
  int data_parallel = 1;  // d: replicas
  // Store keys are "<prefix>/world/...", "<prefix>/pipe<r>/...",
  // "<prefix>/data<device>/...": make it unique per job incarnation so a
  // restarted job never reads a stale address.
  std::string key_prefix = "chronos";
  // Address this rank's Gloo device binds to and advertises to its peers.
  std::string hostname = "127.0.0.1";
  // Bounds rendezvous and each collective.
  absl::Duration timeout = absl::Minutes(5);
};

class GlooCommunicator : public Communicator {
 public:
  // Blocks until every member of the three groups has joined (all ranks must
  // call it; the groups are created in the same order everywhere).
  // kInvalidArgument for inconsistent options, kDeadlineExceeded or
  // kUnavailable when rendezvous fails.
  static absl::StatusOr<std::unique_ptr<GlooCommunicator>> Create(
      c10::intrusive_ptr<c10d::Store> store,
      const GlooCommunicatorOptions& options);
  ~GlooCommunicator() override;

  int world_rank() const override { return o_.world_rank; }
  int world_size() const override { return o_.pipeline * o_.data_parallel; }
  int device() const { return o_.world_rank % o_.pipeline; }
  int data_rank() const { return o_.world_rank / o_.pipeline; }

  // Gloo p2p: IsCompleted() turns true only once Wait has observed the
  // completion (c10d tracks it no other way).
  std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) override;
  std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) override;
  // Tensors of one dtype are flattened into a single all-reduce.
  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors,
                            Group group) override;
  absl::Status Barrier(Group group) override;

 private:
  struct Groups;  // the c10d process groups
  GlooCommunicator(const GlooCommunicatorOptions& o,
                   std::unique_ptr<Groups> groups);

  absl::Status CheckPeer(const at::Tensor& t, int peer, int tag) const;

  GlooCommunicatorOptions o_;
  std::unique_ptr<Groups> groups_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_GLOO_COMMUNICATOR_H_
