// The executor: interprets one device's action list for one training
// iteration. It is the only code that turns a schedule into compute, copies
// and messages; StageRunner owns it and everything it points to.
//
// Runtime semantics (the contract the schedule generators rely on):
// - Actions run strictly in list order on the calling thread.
// - SEND_ACT / SEND_GRAD post an asynchronous send of F's output / B's input
//   gradient and continue at once; the tensor is kept alive until its Work
//   completes. All sends are awaited before the iteration ends.
// - RECV_ACT / RECV_GRAD post an asynchronous receive into a preallocated
//   [b, s, h] buffer of the compute dtype, one per (kind, chunk,
//   micro-batch), reused across iterations. The consumer (F, or B/BI) waits
//   for it with `comm_timeout`; a timeout is kDeadlineExceeded naming the
//   device and the action. A received activation is stashed by F as the
//   chunk's input, so its buffer is not written again until a later
//   iteration, after the B that erases it.
// - Adjacent chunks on the same device hand tensors over locally: no
//   send/receive actions exist between them.
// - F takes chunk 0's input from the iteration's batches, the last chunk's
//   targets likewise, and saves what SaveModeOf(action.policy) keeps.
// - OFFLOAD / RELOAD start ActivationStash::Offload / Reload, which return
//   at once (on a GPU the copies run on their own streams); before each
//   action the executor polls the stash, which releases the device memory
//   of finished offloads. The consumer of a reloaded tensor is ordered
//   after its copy by the stash (worker/stash.h).
// - RECOMPUTE calls Chunk::Recompute; the schedule places it right before
//   the backward it serves.
// - ALLREDUCE sums the chunk's gradients over Group::kData. No division by
//   d: the loss scale 1/(b*s*m*d) already averages over replicas.
// - OPTIM_STEP is a collective over Group::kPipeline: each device's sum of
//   squared gradients is summed (gradients are identical across replicas
//   after ALLREDUCE, so the pipeline group's sum is the global one), its
//   square root is the global norm, then AdamW::Step clips and updates.
// - Every LibTorch exception is caught in one place (RunIteration) and
//   becomes a status naming the device and action: out of memory is
//   kResourceExhausted, anything else kInternal; transport failures keep
//   the Communicator's code (kDeadlineExceeded, kUnavailable).
//
// Stash/ledger contract: every saved activation lives in the
// ActivationStash, which reports each change to the MemoryLedger; the
// executor resets the ledger's peaks at the start of each iteration, so the
// per-iteration peak of resident activation bytes equals the simulator's
// peak_activation_bytes on a synchronous-copy profile ("cpu") exactly. At
// the end of an iteration the stash must be empty (checked: kInternal).
//
// Thread-compatible: one thread calls RunIteration; `stop` may be set from
// any thread and is honoured between actions (a blocked receive is not
// interrupted: it ends when the data arrives or at comm_timeout).
#ifndef CHRONOS_WORKER_EXECUTOR_H_
#define CHRONOS_WORKER_EXECUTOR_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/schedule.h"
#include "worker/comm/communicator.h"
#include "worker/data/token_source.h"
#include "worker/iteration_buffers.h"
#include "worker/memory_ledger.h"
#include "worker/model/chunk.h"
#include "worker/model/model_dims.h"
#include "worker/optim/adamw.h"
#include "worker/stash.h"

namespace chronos::worker {

struct ExecutorOptions {
  int device = 0;                  // pipeline stage this executor runs
  int data_parallel = 1;           // d, for the loss scale
  ModelDims dims;                  // b, s, h of the messages
  c10::TensorOptions act_options;  // compute dtype and device
  absl::Duration comm_timeout = absl::Minutes(5);
  // Test hook, called when OPTIM_STEP is reached (after every backward and
  // ALLREDUCE, before the gradients are clipped and zeroed).
  std::function<void(int64_t iteration)> before_optim_step;
};

// What one iteration did on this device.
struct IterationStats {
  double seconds = 0;          // wall time of RunIteration
  double compute_seconds = 0;  // F, B, BI, BW, RECOMPUTE
  double recompute_seconds = 0;
  double comm_wait_seconds = 0;  // blocked on receives and sends
  // Seconds per ActionType, indexed by its value.
  std::array<double, 13> action_seconds{};
  bool has_loss = false;  // this device holds the last chunk
  double loss = 0;        // mean cross-entropy over this replica's tokens
  double grad_norm = 0;   // global, before clipping; 0 without OPTIM_STEP
  bool stepped = false;   // an OPTIM_STEP ran
  // Ledger at the end of the iteration; peaks and totals are this
  // iteration's (peaks reset at its start, totals as differences).
  int64_t peak_resident_bytes = 0;
  int64_t peak_offloaded_bytes = 0;
  int64_t resident_bytes = 0;
  int64_t offloaded_bytes = 0;
  int64_t offloaded_total_bytes = 0;
  int64_t reloaded_total_bytes = 0;
};

class Executor {
 public:
  // `chunks` are this device's chunks in increasing chunk order (the order
  // of Schedule::DeviceChunks); all pointers must outlive the executor.
  // `optimizer` may be null only for schedules without OPTIM_STEP (bench).
  // kInvalidArgument if the schedule does not match the chunks.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(
      ExecutorOptions options, const Schedule& schedule, std::vector<Chunk*> chunks,
      ActivationStash* stash, MemoryLedger* ledger, Communicator* comm, AdamW* optimizer);

  // Replaces the action list (a live policy change). Takes effect at the
  // next RunIteration. kInvalidArgument if the partition (devices, chunk
  // placement and layers, micro-batches) differs.
  absl::Status SetSchedule(const Schedule& schedule);

  // Runs 1-based `iteration`. `batches` holds the m micro-batches of this
  // replica when the device holds chunk 0 or the last chunk (else may be
  // empty). kCancelled if `stop` becomes true between actions.
  absl::StatusOr<IterationStats> RunIteration(int64_t iteration, const std::vector<Batch>& batches,
                                              const std::atomic<bool>* stop = nullptr);

  const std::vector<Action>& actions() const { return actions_; }

 private:
  Executor(ExecutorOptions options, const Schedule& schedule, std::vector<Chunk*> chunks,
           ActivationStash* stash, MemoryLedger* ledger, Communicator* comm, AdamW* optimizer);

  // Executes actions_[pc]; statuses for transport errors and contract
  // violations, exceptions for LibTorch failures (caught by the caller).
  absl::Status Execute(const Action& a, int64_t iteration, const std::vector<Batch>& batches,
                       IterationStats* st);
  absl::Status RunF(const Action& a, const std::vector<Batch>& batches, IterationStats* st);
  absl::Status RunBackward(const Action& a, IterationStats* st);
  absl::Status RunOptimStep(int64_t iteration, IterationStats* st);
  // Waits for the receive `consumer` needs, if one is pending; a failure
  // names the device, the consumer and the peer.
  absl::Status WaitRecv(const Action& consumer, bool grad, IterationBuffers::Slot* sl,
                        IterationStats* st);
  // After a failure: drops hand-offs, stash entries and partial gradients.
  void ResetIterationState();

  ExecutorOptions o_;
  Schedule schedule_;  // partition + this device's actions (see SetSchedule)
  std::vector<Action> actions_;
  std::vector<Chunk*> chunks_;
  std::vector<int> local_;  // global chunk -> index in chunks_, or -1
  ActivationStash* stash_;
  MemoryLedger* ledger_;
  Communicator* comm_;
  AdamW* optimizer_;
  int num_chunks_ = 0;
  int last_chunk_ = 0;
  double loss_scale_ = 0;
  IterationBuffers buffers_;
  std::vector<std::vector<at::Tensor>> chunk_grads_;  // per local chunk
  at::Tensor loss_sum_;  // 0-dim fp32 accumulator on the compute device
  at::Tensor norm_buf_;  // fp64 [1] on the device: the squared-norm all-reduce
  int pc_ = 0;           // index of the action being executed
};

// Converts the exception in flight (call only inside a catch block) into a
// status prefixed with `context`: out of memory -> kResourceExhausted,
// anything else kInternal.
absl::Status StatusFromCurrentException(const std::string& context);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_EXECUTOR_H_
