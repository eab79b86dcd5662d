// A stand-in Communicator for emulating one stage of a pipeline on a single
// device: sends complete at once and drop the data; receives complete at
// once with deterministic pseudo-random values (seeded by the tag), so a
// stage runs its real compute and memory schedule with no peers. Collectives
// are the identity (a group of one).
#ifndef CHRONOS_WORKER_COMM_LOOPBACK_COMMUNICATOR_H_
#define CHRONOS_WORKER_COMM_LOOPBACK_COMMUNICATOR_H_

#include <memory>
#include <vector>

#include "worker/comm/communicator.h"

namespace chronos::worker {

class LoopbackCommunicator : public Communicator {
 public:
  // The ranks it reports, so an emulated stage logs as the one it stands for.
  explicit LoopbackCommunicator(int world_rank = 0, int world_size = 1)
      : world_rank_(world_rank), world_size_(world_size) {}

  int world_rank() const override { return world_rank_; }
  int world_size() const override { return world_size_; }

  std::unique_ptr<Work> Send(const at::Tensor& t, int peer, int tag) override;
  // Floating tensors get N(0, 1) values, integer ones values in [0, 1000).
  std::unique_ptr<Work> Recv(at::Tensor& t, int peer, int tag) override;
  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors, Group group) override;
  absl::Status Barrier(Group group) override;

 private:
  int world_rank_;
  int world_size_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_LOOPBACK_COMMUNICATOR_H_
