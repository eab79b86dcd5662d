#include "worker/executor.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <cmath>
#include <new>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/cost_model.h"

namespace chronos::worker {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Message tags: unique per (kind, consuming chunk, micro-batch) between a
// pair of devices, so any interleaving of posts matches up.
int Tag(bool grad, int consumer_chunk, int mb, int num_chunks, int microbatches) {
  return ((grad ? num_chunks : 0) + consumer_chunk) * microbatches + mb;
}

bool IsOutOfMemoryMessage(const std::string& message) {
  // CUDA's allocator says "out of memory"; LibTorch's CPU allocator says
  // "can't allocate memory" or "not enough memory" depending on version.
  return absl::StrContains(message, "out of memory") ||
         absl::StrContains(message, "not enough memory") ||
         absl::StrContains(message, "can't allocate memory");
}

// Actions that work on one of this device's chunks.
bool NeedsLocalChunk(ActionType t) { return t != ActionType::kOptimStep; }

bool SamePartition(const Schedule& a, const Schedule& b) {
  return a.num_devices == b.num_devices && a.num_microbatches == b.num_microbatches &&
         a.chunk_device == b.chunk_device && a.chunk_layers == b.chunk_layers;
}

}  // namespace

absl::Status StatusFromCurrentException(const std::string& context) {
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(context, ": out of memory: ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    if (IsOutOfMemoryMessage(msg)) {
      return absl::ResourceExhaustedError(absl::StrCat(context, ": ", msg));
    }
    return absl::InternalError(absl::StrCat(context, ": ", msg));
  } catch (const std::bad_alloc& e) {
    return absl::ResourceExhaustedError(absl::StrCat(context, ": out of memory (", e.what(), ")"));
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    if (IsOutOfMemoryMessage(msg)) {
      return absl::ResourceExhaustedError(absl::StrCat(context, ": ", msg));
    }
    return absl::InternalError(absl::StrCat(context, ": ", msg));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": unknown exception"));
  }
}

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(
    ExecutorOptions options, const Schedule& schedule, std::vector<Chunk*> chunks,
    ActivationStash* stash, MemoryLedger* ledger, Communicator* comm, AdamW* optimizer) {
  if (stash == nullptr || ledger == nullptr || comm == nullptr) {
    return absl::InvalidArgumentError("executor: null stash, ledger or comm");
  }
  const int d = options.device;
  if (d < 0 || d >= schedule.num_devices ||
      static_cast<int>(schedule.devices.size()) != schedule.num_devices) {
    return absl::InvalidArgumentError(absl::StrCat("executor: device ", d, " outside a ",
                                                   schedule.num_devices, "-device schedule"));
  }
  const std::vector<int> mine = schedule.DeviceChunks(d);
  if (mine.size() != chunks.size()) {
    return absl::InvalidArgumentError(absl::StrCat("executor: device ", d, " holds ", mine.size(),
                                                   " chunks in the schedule but got ",
                                                   chunks.size()));
  }
  for (size_t i = 0; i < mine.size(); ++i) {
    if (chunks[i] == nullptr || chunks[i]->spec().index != mine[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("executor: chunk ", i, " of device ", d, " must be chunk ", mine[i]));
    }
  }
  if (schedule.num_chunks() < 1 ||
      static_cast<int>(schedule.chunk_layers.size()) != schedule.num_chunks()) {
    return absl::InvalidArgumentError(
        "executor: schedule lacks chunk placement or layers per chunk");
  }
  if (schedule.num_microbatches < 1 || options.data_parallel < 1) {
    return absl::InvalidArgumentError("executor: needs >= 1 micro-batch and >= 1 replica");
  }
  auto e = std::unique_ptr<Executor>(new Executor(std::move(options), schedule, std::move(chunks),
                                                  stash, ledger, comm, optimizer));
  // Validates the action list against the partition just installed.
  absl::Status s = e->SetSchedule(schedule);
  if (!s.ok()) return s;
  return e;
}

Executor::Executor(ExecutorOptions options, const Schedule& schedule, std::vector<Chunk*> chunks,
                   ActivationStash* stash, MemoryLedger* ledger, Communicator* comm,
                   AdamW* optimizer)
    : o_(std::move(options)),
      chunks_(std::move(chunks)),
      stash_(stash),
      ledger_(ledger),
      comm_(comm),
      optimizer_(optimizer) {
  schedule_ = schedule;
  schedule_.devices.clear();  // only the partition is kept
  num_chunks_ = schedule.num_chunks();
  last_chunk_ = num_chunks_ - 1;
  local_.assign(num_chunks_, -1);
  for (size_t i = 0; i < chunks_.size(); ++i) {
    local_[chunks_[i]->spec().index] = static_cast<int>(i);
  }
  const int m = schedule.num_microbatches;
  loss_scale_ = 1.0 / (static_cast<double>(o_.dims.micro_batch) *
                       static_cast<double>(o_.dims.seq_len) * m * o_.data_parallel);
  buffers_.Init(num_chunks_, m, {o_.dims.micro_batch, o_.dims.seq_len, o_.dims.hidden},
                o_.act_options);
  loss_sum_ = at::zeros({}, o_.act_options.dtype(at::kFloat));
  chunk_grads_.resize(chunks_.size());
  for (size_t i = 0; i < chunks_.size(); ++i) {
    for (Param* p : chunks_[i]->params()) chunk_grads_[i].push_back(p->grad);
  }
  // On the compute device: NCCL reduces device tensors only.
  norm_buf_ = at::zeros({1}, o_.act_options.dtype(at::kDouble));
}

absl::Status Executor::SetSchedule(const Schedule& schedule) {
  if (!SamePartition(schedule, schedule_) ||
      static_cast<int>(schedule.devices.size()) != schedule.num_devices) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", o_.device,
                     ": a new schedule must keep the partition (devices, chunk placement, "
                     "layers per chunk, micro-batches)"));
  }
  const std::vector<Action>& list = schedule.devices[o_.device];
  const int m = schedule.num_microbatches;
  for (size_t i = 0; i < list.size(); ++i) {
    const Action& a = list[i];
    bool ok = true;
    if (NeedsLocalChunk(a.type)) {
      ok = a.chunk >= 0 && a.chunk < num_chunks_ && local_[a.chunk] >= 0;
      if (ok && a.type != ActionType::kAllReduce) {
        ok = a.microbatch >= 0 && a.microbatch < m;
      }
    }
    switch (a.type) {
      case ActionType::kSendAct:
        ok = ok && a.chunk < last_chunk_ && schedule.chunk_device[a.chunk + 1] == a.peer;
        break;
      case ActionType::kRecvAct:
        ok = ok && a.chunk > 0 && schedule.chunk_device[a.chunk - 1] == a.peer;
        break;
      case ActionType::kSendGrad:
        ok = ok && a.chunk > 0 && schedule.chunk_device[a.chunk - 1] == a.peer;
        break;
      case ActionType::kRecvGrad:
        ok = ok && a.chunk < last_chunk_ && schedule.chunk_device[a.chunk + 1] == a.peer;
        break;
      case ActionType::kOptimStep:
        ok = optimizer_ != nullptr;
        break;
      default:
        break;
    }
    if (ok && (a.type == ActionType::kSendAct || a.type == ActionType::kRecvAct ||
               a.type == ActionType::kSendGrad || a.type == ActionType::kRecvGrad)) {
      ok = a.peer != o_.device;
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("device ", o_.device, ": action ", i, " ",
                                                     ActionToString(a), " cannot run here"));
    }
  }
  schedule_.kind = schedule.kind;
  actions_ = list;
  return absl::OkStatus();
}

void Executor::ResetIterationState() {
  buffers_.ClearIteration();
  stash_->Clear();
  if (optimizer_ != nullptr) optimizer_->ZeroGrad();
  loss_sum_.zero_();
}

absl::StatusOr<IterationStats> Executor::RunIteration(int64_t iteration,
                                                      const std::vector<Batch>& batches,
                                                      const std::atomic<bool>* stop) {
  const auto start = Clock::now();
  const int m = schedule_.num_microbatches;
  const bool needs_data = local_[0] >= 0 || local_[last_chunk_] >= 0;
  if (needs_data && static_cast<int>(batches.size()) != m) {
    return absl::InvalidArgumentError(absl::StrCat("device ", o_.device, ": iteration ", iteration,
                                                   " needs ", m, " micro-batches, got ",
                                                   batches.size()));
  }
  IterationStats st;
  if (stash_->size() != 0) stash_->Clear();  // after a failed iteration
  ledger_->ResetPeaks();
  const LedgerSnapshot before = ledger_->Snapshot();
  loss_sum_.zero_();

  absl::Status status;
  pc_ = 0;
  try {
    const int n = static_cast<int>(actions_.size());
    for (; pc_ < n; ++pc_) {
      if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
        status = absl::CancelledError(absl::StrCat("device ", o_.device, ": stopped at iteration ",
                                                   iteration, " before action ", pc_));
        break;
      }
      const Action& a = actions_[pc_];
      // Completes the host copies that have finished, so their device
      // memory goes back as soon as it can (a query per copy; no waiting).
      stash_->Poll();
      const auto t0 = Clock::now();
      status = Execute(a, iteration, batches, &st);
      const double dt = Seconds(t0, Clock::now());
      st.action_seconds[static_cast<int>(a.type)] += dt;
      if (!status.ok()) break;
    }
    if (status.ok()) {
      status = buffers_.AwaitSends(o_.comm_timeout, &st.comm_wait_seconds);
      if (!status.ok()) {
        status = absl::Status(status.code(), absl::StrCat("device ", o_.device,
                                                          ": waiting for sends at the end of "
                                                          "iteration ",
                                                          iteration, ": ", status.message()));
      }
    }
    if (status.ok() && local_[last_chunk_] >= 0) {
      st.has_loss = true;
      st.loss = loss_sum_.item<double>() / m;
    }
  } catch (...) {
    const std::string where = pc_ < static_cast<int>(actions_.size())
                                  ? absl::StrCat("action ", pc_, " ", ActionToString(actions_[pc_]))
                                  : std::string("end of iteration");
    status = StatusFromCurrentException(
        absl::StrCat("device ", o_.device, ", iteration ", iteration, ", ", where));
  }
  if (status.ok() && (stash_->size() != 0 || buffers_.HasLeftovers())) {
    status = absl::InternalError(absl::StrCat(
        "device ", o_.device, ": iteration ", iteration, " ended with ", stash_->size(),
        " stashed tensors or unconsumed messages; the schedule is incomplete"));
  }
  if (!status.ok()) {
    ResetIterationState();
    return status;
  }

  for (ActionType t :
       {ActionType::kF, ActionType::kB, ActionType::kBI, ActionType::kBW, ActionType::kRecompute}) {
    st.compute_seconds += st.action_seconds[static_cast<int>(t)];
  }
  st.recompute_seconds = st.action_seconds[static_cast<int>(ActionType::kRecompute)];
  const LedgerSnapshot after = ledger_->Snapshot();
  st.peak_resident_bytes = after.peak_resident_bytes;
  st.peak_offloaded_bytes = after.peak_offloaded_bytes;
  st.resident_bytes = after.resident_bytes;
  st.offloaded_bytes = after.offloaded_bytes;
  st.offloaded_total_bytes = after.offloaded_total_bytes - before.offloaded_total_bytes;
  st.reloaded_total_bytes = after.reloaded_total_bytes - before.reloaded_total_bytes;
  st.seconds = Seconds(start, Clock::now());
  return st;
}

absl::Status Executor::Execute(const Action& a, int64_t iteration,
                               const std::vector<Batch>& batches, IterationStats* st) {
  const int m = schedule_.num_microbatches;
  switch (a.type) {
    case ActionType::kF:
      return RunF(a, batches, st);
    case ActionType::kB:
    case ActionType::kBI:
      return RunBackward(a, st);
    case ActionType::kBW:
      chunks_[local_[a.chunk]]->BackwardWeight(a.microbatch, stash_);
      return absl::OkStatus();
    case ActionType::kSendAct:
    case ActionType::kSendGrad: {
      const bool grad = a.type == ActionType::kSendGrad;
      IterationBuffers::Slot& sl = buffers_.slot(a.chunk, a.microbatch);
      at::Tensor& t = grad ? sl.grad_in : sl.out;
      if (!t.defined()) {
        return absl::InternalError(absl::StrCat("device ", o_.device, ": ", ActionToString(a),
                                                " has nothing to send (its ", grad ? "B" : "F",
                                                " has not run)"));
      }
      const int consumer = grad ? a.chunk - 1 : a.chunk + 1;
      std::unique_ptr<Work> w =
          comm_->Send(t, a.peer, Tag(grad, consumer, a.microbatch, num_chunks_, m));
      buffers_.AddSend(std::move(t), std::move(w));
      t = at::Tensor();
      absl::Status s = buffers_.ReapCompletedSends();
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("device ", o_.device, ": ", ActionToString(a),
                                                   ": ", s.message()));
      }
      return absl::OkStatus();
    }
    case ActionType::kRecvAct:
    case ActionType::kRecvGrad: {
      const bool grad = a.type == ActionType::kRecvGrad;
      IterationBuffers::Slot& sl = buffers_.slot(a.chunk, a.microbatch);
      at::Tensor& buf = buffers_.RecvBuffer(grad, a.chunk, a.microbatch);
      std::unique_ptr<Work> w =
          comm_->Recv(buf, a.peer, Tag(grad, a.chunk, a.microbatch, num_chunks_, m));
      if (grad) {
        sl.grad = buf;
        sl.grad_recv = std::move(w);
        sl.grad_peer = a.peer;
      } else {
        sl.act = buf;
        sl.act_recv = std::move(w);
        sl.act_peer = a.peer;
      }
      return absl::OkStatus();
    }
    case ActionType::kOffload:
      stash_->Offload(a.microbatch, a.chunk, a.policy.offload_fraction);
      return absl::OkStatus();
    case ActionType::kReload:
      stash_->Reload(a.microbatch, a.chunk);
      return absl::OkStatus();
    case ActionType::kRecompute:
      chunks_[local_[a.chunk]]->Recompute(a.microbatch, stash_);
      return absl::OkStatus();
    case ActionType::kAllReduce: {
      // Sum only: the loss scale already divides by the replica count.
      absl::Status s = comm_->AllReduceSum(chunk_grads_[local_[a.chunk]], Group::kData);
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("device ", o_.device, ": ", ActionToString(a),
                                                   ": ", s.message()));
      }
      return absl::OkStatus();
    }
    case ActionType::kOptimStep:
      return RunOptimStep(iteration, st);
  }
  return absl::InternalError("unknown action type");
}

absl::Status Executor::WaitRecv(const Action& consumer, bool grad, IterationBuffers::Slot* sl,
                                IterationStats* st) {
  std::unique_ptr<Work>& w = grad ? sl->grad_recv : sl->act_recv;
  if (!w) return absl::OkStatus();
  const auto t0 = Clock::now();
  absl::Status s = w->Wait(o_.comm_timeout);
  st->comm_wait_seconds += Seconds(t0, Clock::now());
  w.reset();
  if (s.ok()) return s;
  return absl::Status(
      s.code(), absl::StrCat("device ", o_.device, ": ", ActionToString(consumer), " waiting for ",
                             grad ? "RECV_GRAD" : "RECV_ACT", " from device ",
                             grad ? sl->grad_peer : sl->act_peer, " (timeout ",
                             absl::FormatDuration(o_.comm_timeout), "): ", s.message()));
}

absl::Status Executor::RunF(const Action& a, const std::vector<Batch>& batches,
                            IterationStats* st) {
  const int mb = a.microbatch;
  Chunk* chunk = chunks_[local_[a.chunk]];
  IterationBuffers::Slot& sl = buffers_.slot(a.chunk, mb);
  at::Tensor input;
  if (a.chunk == 0) {
    input = batches[mb].inputs;
  } else {
    absl::Status s = WaitRecv(a, /*grad=*/false, &sl, st);
    if (!s.ok()) return s;
    input = std::move(sl.act);
    sl.act = at::Tensor();
    if (!input.defined()) {
      return absl::InternalError(
          absl::StrCat("device ", o_.device, ": ", ActionToString(a),
                       " has no input (no RECV_ACT and no local F before it)"));
    }
  }
  const bool last = a.chunk == last_chunk_;
  at::Tensor out = chunk->Forward(mb, input, last ? batches[mb].targets : at::Tensor(),
                                  SaveModeOf(a.policy), stash_);
  if (last) {
    loss_sum_.add_(out);
  } else if (local_[a.chunk + 1] >= 0) {
    buffers_.slot(a.chunk + 1, mb).act = std::move(out);
  } else {
    sl.out = std::move(out);
  }
  return absl::OkStatus();
}

absl::Status Executor::RunBackward(const Action& a, IterationStats* st) {
  const int mb = a.microbatch;
  Chunk* chunk = chunks_[local_[a.chunk]];
  IterationBuffers::Slot& sl = buffers_.slot(a.chunk, mb);
  at::Tensor grad_output;
  if (a.chunk != last_chunk_) {
    absl::Status s = WaitRecv(a, /*grad=*/true, &sl, st);
    if (!s.ok()) return s;
    grad_output = std::move(sl.grad);
    sl.grad = at::Tensor();
    if (!grad_output.defined()) {
      return absl::InternalError(
          absl::StrCat("device ", o_.device, ": ", ActionToString(a),
                       " has no output gradient (no RECV_GRAD and no local B before it)"));
    }
  }
  at::Tensor grad_input = a.type == ActionType::kB
                              ? chunk->Backward(mb, grad_output, loss_scale_, stash_)
                              : chunk->BackwardInput(mb, grad_output, loss_scale_, stash_);
  if (a.chunk > 0) {
    if (local_[a.chunk - 1] >= 0) {
      buffers_.slot(a.chunk - 1, mb).grad = std::move(grad_input);
    } else {
      sl.grad_in = std::move(grad_input);
    }
  }
  return absl::OkStatus();
}

absl::Status Executor::RunOptimStep(int64_t iteration, IterationStats* st) {
  // Our sends must land before we block in a collective that our peers
  // enter only after receiving them.
  absl::Status s = buffers_.AwaitSends(o_.comm_timeout, &st->comm_wait_seconds);
  if (!s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("device ", o_.device, ": sends before OPTIM_STEP: ", s.message()));
  }
  if (o_.before_optim_step) o_.before_optim_step(iteration);
  norm_buf_.fill_(optimizer_->LocalGradSquaredNorm());
  std::vector<at::Tensor> t{norm_buf_};
  s = comm_->AllReduceSum(t, Group::kPipeline);
  if (!s.ok()) {
    return absl::Status(
        s.code(),
        absl::StrCat("device ", o_.device, ": OPTIM_STEP gradient-norm all-reduce: ", s.message()));
  }
  st->grad_norm = std::sqrt(t[0].item<double>());
  st->stepped = true;
  optimizer_->Step(iteration, st->grad_norm);
  return absl::OkStatus();
}

}  // namespace chronos::worker
