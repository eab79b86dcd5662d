// The tensors that flow between one device's actions during an iteration:
// local hand-offs between adjacent chunks, posted receives and their
// buffers, outputs waiting for their SEND, and sends in flight. Indexed by
// (chunk, micro-batch) in flat vectors so the executor's hot path does no
// map lookups and no allocation beyond the tensors themselves.
//
// Receive buffers persist across iterations (one per kind, chunk and
// micro-batch, allocated on first use): the executor's contract guarantees a
// buffer's previous contents were consumed (and erased from the stash)
// before the next iteration posts a receive into it.
//
// Not thread-safe: owned by the Executor.
#ifndef CHRONOS_WORKER_ITERATION_BUFFERS_H_
#define CHRONOS_WORKER_ITERATION_BUFFERS_H_

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"

namespace chronos::worker {

class IterationBuffers {
 public:
  // What F(c, mb) and B(c, mb) consume and produce.
  struct Slot {
    at::Tensor act;                  // F's input: hand-off or receive buffer
    std::unique_ptr<Work> act_recv;  // pending receive into `act`
    int act_peer = -1;
    at::Tensor grad;                  // gradient of the chunk's output, for B
    std::unique_ptr<Work> grad_recv;  // pending receive into `grad`
    int grad_peer = -1;
    at::Tensor out;      // F's output until SEND_ACT posts it
    at::Tensor grad_in;  // B's input gradient until SEND_GRAD posts it
  };

  // Sizes the slots for `num_chunks` x `microbatches`; receive buffers have
  // `shape` and `options`. Drops any previous state.
  void Init(int num_chunks, int microbatches, std::vector<int64_t> shape,
            c10::TensorOptions options);

  Slot& slot(int chunk, int mb) { return slots_[static_cast<size_t>(chunk) * microbatches_ + mb]; }
  // The persistent receive buffer of (kind, chunk, mb); grad = RECV_GRAD.
  at::Tensor& RecvBuffer(bool grad, int chunk, int mb);

  // Keeps `t` alive until `work` completes.
  void AddSend(at::Tensor t, std::unique_ptr<Work> work);
  // Drops sends at the front of the queue that report completion (cheap:
  // transports that only learn of completion in Wait report false); the
  // first failed one's status.
  absl::Status ReapCompletedSends();
  // Waits for every send; the first failure. Adds the blocked time to
  // *waited_seconds.
  absl::Status AwaitSends(absl::Duration timeout, double* waited_seconds);
  size_t pending_sends() const { return sends_.size(); }

  // Drops every hand-off, pending receive and send (keeps receive buffers).
  void ClearIteration();
  // True if some slot still holds a tensor or a pending receive: a schedule
  // that produced something nobody consumed.
  bool HasLeftovers() const;

 private:
  struct PendingSend {
    at::Tensor tensor;
    std::unique_ptr<Work> work;
  };

  int microbatches_ = 0;
  std::vector<int64_t> shape_;
  c10::TensorOptions options_;
  std::vector<Slot> slots_;
  std::vector<at::Tensor> act_buffers_, grad_buffers_;
  std::deque<PendingSend> sends_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_ITERATION_BUFFERS_H_
