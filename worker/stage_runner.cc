// StageRunner: wires one device's chunks, optimizer, data and executor
// together and drives the iterations. All model math is in Chunk, all
// schedule interpretation in Executor; this file only builds, loops,
// checkpoints and reports.
#include "worker/stage_runner.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/cost_model.h"
#include "core/device_profile.h"
#include "core/status_macros.h"
#include "worker/checkpoint.h"
#include "worker/data/token_source.h"
#include "worker/executor.h"
#include "worker/model/chunk.h"
#include "worker/model/model_dims_from_spec.h"
#include "worker/optim/adamw.h"
#include "worker/stage_runner_impl.h"
#include "worker/stash.h"

namespace chronos::worker {
namespace {

// The spec's optimizer settings; their defaults are ApplyJobSpecDefaults'.
AdamWOptions AdamWOptionsFromSpec(const v1::JobSpec& spec, bool offload_state,
                                  std::shared_ptr<PinnedPool> host_pool) {
  const v1::TrainingSpec& t = spec.training();
  AdamWOptions o;
  o.lr = t.lr();
  o.min_lr = t.min_lr();
  o.warmup_iterations = t.warmup_iterations();
  o.total_iterations = std::max(1, t.iterations());
  o.beta1 = t.beta1();
  o.beta2 = t.beta2();
  o.eps = t.eps();
  o.weight_decay = t.weight_decay();
  o.grad_clip = t.grad_clip();
  o.offload_state = offload_state;
  o.host_pool = std::move(host_pool);
  return o;
}

class StageRunnerImpl : public StageRunner {
 public:
  StageRunnerImpl(StageRunnerOptions options, std::unique_ptr<Communicator> comm,
                  StageRunnerExtras extras)
      : o_(std::move(options)),
        extras_(std::move(extras)),
        comm_(std::move(comm)),
        stash_(&ledger_, extras_.device_runtime ? extras_.device_runtime->copier().get()
                                                : extras_.host_copier.get()),
        policy_generation_(o_.policy_generation),
        offload_ratio_(o_.offload_ratio) {}

  absl::Status Init();

  absl::Status Run(ProgressSink* sink) override;
  // Also aborts the transport: a receive blocked on a hung peer returns at
  // once, so a stopped attempt never holds up the next one.
  void Stop() override {
    stop_.store(true);
    comm_->Abort();
  }
  void UpdateSchedule(const Schedule& schedule, int64_t generation, double offload_ratio) override {
    absl::MutexLock l(&mu_);
    pending_ = PendingSchedule{schedule, generation, offload_ratio, current_iteration_.load()};
  }
  void RequestCheckpoint() override { checkpoint_requested_.store(true); }
  const MemoryLedger& ledger() const override { return ledger_; }

 private:
  struct PendingSchedule {
    Schedule schedule;
    int64_t generation;
    double offload_ratio;
    int64_t received_iteration;  // the iteration running when it arrived
  };

  absl::Status ApplyPendingSchedule();
  absl::Status Restore(int64_t iteration);
  absl::Status RestoreOwn(const StageCheckpoint& ck);
  absl::Status RestoreRepartitioned(int64_t iteration, int written_by);
  absl::Status WriteCheckpoint(int64_t iteration);
  absl::Status FetchBatches(int64_t iteration, std::vector<Batch>* out);
  std::vector<Param*> AllParams();

  StageRunnerOptions o_;
  StageRunnerExtras extras_;
  std::unique_ptr<Communicator> comm_;
  int data_parallel_ = 1;
  ModelDims dims_;
  c10::TensorOptions options_;
  std::string checkpoint_dir_;
  bool needs_data_ = false;
  // Declared before the stash and chunks, which report to it.
  MemoryLedger ledger_;
  ActivationStash stash_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::unique_ptr<AdamW> optimizer_;
  AdamWOptions adam_options_;
  std::unique_ptr<TokenSource> tokens_;
  std::unique_ptr<Executor> executor_;  // last: points at the members above

  std::atomic<bool> stop_{false};
  std::atomic<bool> checkpoint_requested_{false};
  int64_t policy_generation_;
  double offload_ratio_;
  int64_t policy_received_iteration_ = 0;
  std::atomic<int64_t> current_iteration_{0};  // the one Run() is in
  int64_t checkpoint_iteration_ = 0;
  absl::Mutex mu_;
  std::optional<PendingSchedule> pending_ ABSL_GUARDED_BY(mu_);
};

std::vector<Param*> StageRunnerImpl::AllParams() {
  std::vector<Param*> all;
  for (auto& c : chunks_) {
    for (Param* p : c->params()) all.push_back(p);
  }
  return all;
}

absl::Status StageRunnerImpl::Init() {
  const v1::JobSpec& spec = o_.spec;
  const Schedule& s = o_.schedule;
  const int p = s.num_devices;
  data_parallel_ = std::max(1, spec.parallel().data());
  if (p < 1 || o_.device < 0 || o_.device >= p) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage runner: device ", o_.device, " outside a ", p, "-device schedule"));
  }
  if (o_.data_rank < 0 || o_.data_rank >= data_parallel_) {
    return absl::InvalidArgumentError(absl::StrCat("stage runner: data rank ", o_.data_rank,
                                                   " outside ", data_parallel_, " replicas"));
  }
  if (comm_ == nullptr) {
    return absl::InvalidArgumentError("stage runner: null communicator");
  }
  if (comm_->world_size() != p * data_parallel_ ||
      comm_->world_rank() != o_.data_rank * p + o_.device) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage runner: communicator is rank ", comm_->world_rank(), " of ", comm_->world_size(),
        "; device ", o_.device, " of replica ", o_.data_rank, " in a ", p, " x ", data_parallel_,
        " job needs rank ", o_.data_rank * p + o_.device));
  }
  const int C = s.num_chunks();
  int64_t layers = 0;
  for (int l : s.chunk_layers) layers += l;
  if (C < 1 || static_cast<int>(s.chunk_layers.size()) != C || layers != spec.model().layers()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage runner: the schedule's chunk layers (", s.chunk_layers.size(), " chunks, ", layers,
        " layers) do not match model.layers ", spec.model().layers()));
  }
  if (o_.threads > 0) at::set_num_threads(o_.threads);
  std::shared_ptr<void> on_device =
      extras_.device_runtime ? extras_.device_runtime->Enter() : nullptr;

  // The numerics the plan was made for (core/cost_model.h), not a rule of
  // the worker's own.
  absl::StatusOr<v1::DeviceProfile> profile = ResolveDeviceProfile(spec.device());
  if (!profile.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("device.profile: ", profile.status().message()));
  }
  const Numerics numerics = ResolveNumerics(spec, *profile);
  dims_ = ModelDimsFromSpec(spec, numerics.flash);
  options_ = c10::TensorOptions()
                 .device(c10::Device(o_.device_name))
                 .dtype(numerics.mixed_precision ? at::kBFloat16 : at::kFloat);
  checkpoint_dir_ =
      !o_.checkpoint_dir.empty() ? o_.checkpoint_dir : spec.training().checkpoint_dir();
  if (spec.training().checkpoint_every() > 0 && checkpoint_dir_.empty()) {
    return absl::InvalidArgumentError(
        "training.checkpoint_dir must be set when checkpoint_every > 0");
  }

  const std::vector<int> mine = s.DeviceChunks(o_.device);
  std::vector<int> first_layer(C, 0);
  for (int c = 1; c < C; ++c) {
    first_layer[c] = first_layer[c - 1] + s.chunk_layers[c - 1];
  }
  std::vector<Chunk*> raw;
  for (int c : mine) {
    ChunkSpec cs;
    cs.index = c;
    cs.first_layer = first_layer[c];
    cs.num_layers = s.chunk_layers[c];
    cs.has_embedding = c == 0;
    cs.has_head = c == C - 1;
    chunks_.push_back(std::make_unique<Chunk>(dims_, cs, spec.training().seed(), options_));
    raw.push_back(chunks_.back().get());
    needs_data_ |= cs.has_embedding || cs.has_head;
  }
  adam_options_ = AdamWOptionsFromSpec(
      spec, s.optimizer_offload,
      extras_.device_runtime ? extras_.device_runtime->pinned_pool() : nullptr);
  optimizer_ = std::make_unique<AdamW>(AllParams(), adam_options_);

  if (needs_data_) {
    const TokenFormat format =
        spec.data().format() == v1::DATA_FORMAT_LLMC ? TokenFormat::kLlmc : TokenFormat::kText;
    CHRONOS_ASSIGN_OR_RETURN(tokens_,
                             TokenSource::Open(spec.data().path(), format, spec.model().vocab(),
                                               spec.model().seq_len()));
  }

  ExecutorOptions eo;
  eo.device = o_.device;
  eo.data_parallel = data_parallel_;
  eo.dims = dims_;
  eo.act_options = options_;
  eo.comm_timeout = extras_.comm_timeout;
  if (extras_.before_optim_step) {
    eo.before_optim_step = [this](int64_t it) { extras_.before_optim_step(it, AllParams()); };
  }
  CHRONOS_ASSIGN_OR_RETURN(executor_, Executor::Create(std::move(eo), s, std::move(raw), &stash_,
                                                       &ledger_, comm_.get(), optimizer_.get()));
  return absl::OkStatus();
}

absl::Status StageRunnerImpl::ApplyPendingSchedule() {
  std::optional<PendingSchedule> next;
  {
    absl::MutexLock l(&mu_);
    next.swap(pending_);
  }
  if (!next) return absl::OkStatus();
  CHRONOS_RETURN_IF_ERROR(executor_->SetSchedule(next->schedule));
  policy_generation_ = next->generation;
  offload_ratio_ = next->offload_ratio;
  policy_received_iteration_ = next->received_iteration;
  return absl::OkStatus();
}

absl::Status StageRunnerImpl::FetchBatches(int64_t iteration, std::vector<Batch>* out) {
  out->clear();
  if (!needs_data_) return absl::OkStatus();
  const int m = o_.schedule.num_microbatches;
  out->reserve(m);
  for (int mb = 0; mb < m; ++mb) {
    Batch b = tokens_->Get(iteration, o_.data_rank, data_parallel_, mb, m, dims_.micro_batch,
                           dims_.seq_len, o_.spec.training().seed());
    if (options_.device() != b.inputs.device()) {
      b.inputs = b.inputs.to(options_.device());
      b.targets = b.targets.to(options_.device());
    }
    out->push_back(std::move(b));
  }
  return absl::OkStatus();
}

absl::Status StageRunnerImpl::WriteCheckpoint(int64_t iteration) {
  StageCheckpoint ck;
  ck.iteration = iteration;
  ck.device = o_.device;
  ck.data_rank = o_.data_rank;
  ck.seed = o_.spec.training().seed();
  ck.optimizer_step = optimizer_->step_count();
  ck.chunk_layers = o_.schedule.chunk_layers;
  for (Param* p : AllParams()) ck.params[p->name] = p->master;
  ck.optimizer_state = optimizer_->StateTensors();
  for (Param* p : AllParams()) ck.param_order.push_back(p->name);
  CHRONOS_RETURN_IF_ERROR(WriteStageCheckpoint(checkpoint_dir_, ck));
  checkpoint_iteration_ = iteration;
  // keep_checkpoints is set by ApplyJobSpecDefaults; a spec without it
  // (built by hand) keeps every checkpoint.
  if (o_.spec.training().keep_checkpoints() > 0) {
    PruneStageCheckpoints(checkpoint_dir_, o_.device, o_.data_rank,
                          o_.spec.training().keep_checkpoints());
  }
  return absl::OkStatus();
}

absl::Status StageRunnerImpl::Restore(int64_t iteration) {
  const int written_by =
      o_.checkpoint_num_devices > 0 ? o_.checkpoint_num_devices : o_.schedule.num_devices;
  if (written_by == o_.schedule.num_devices) {
    absl::StatusOr<StageCheckpoint> ck =
        ReadStageCheckpoint(checkpoint_dir_, iteration, o_.device, o_.data_rank);
    if (ck.ok() && ck->chunk_layers == o_.schedule.chunk_layers) {
      return RestoreOwn(*ck);
    }
    // A replica's own files may be gone (a lost node's disk); replicas hold
    // the same values, so the gather below reads rank 0's instead.
    if (!ck.ok() && !(absl::IsNotFound(ck.status()) && o_.data_rank != 0)) {
      return ck.status();
    }
  }
  return RestoreRepartitioned(iteration, written_by);
}

absl::Status StageRunnerImpl::RestoreOwn(const StageCheckpoint& ck) {
  const int64_t iteration = ck.iteration;
  auto mismatch = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", StageCheckpointPath(checkpoint_dir_, iteration, o_.device, o_.data_rank),
        " does not fit this job: ", why));
  };
  if (ck.seed != o_.spec.training().seed()) {
    return mismatch(absl::StrCat("seed ", ck.seed, ", job seed ", o_.spec.training().seed()));
  }
  std::vector<Param*> params = AllParams();
  if (ck.params.size() != params.size()) {
    return mismatch(absl::StrCat(ck.params.size(), " parameters, this stage has ", params.size()));
  }
  std::vector<at::Tensor> state = optimizer_->StateTensors();
  if (ck.optimizer_state.size() != state.size()) {
    return mismatch("optimizer state has the wrong number of tensors");
  }
  for (Param* p : params) {
    auto it = ck.params.find(p->name);
    if (it == ck.params.end() || !it->second.sizes().equals(p->master.sizes())) {
      return mismatch(absl::StrCat("parameter ", p->name, " missing or resized"));
    }
  }
  for (size_t i = 0; i < state.size(); ++i) {
    if (!ck.optimizer_state[i].sizes().equals(state[i].sizes())) {
      return mismatch("optimizer state has the wrong shape");
    }
  }
  at::NoGradGuard no_grad;
  for (Param* p : params) {
    p->master.copy_(ck.params.at(p->name));
    p->SyncValue();
  }
  for (size_t i = 0; i < state.size(); ++i) state[i].copy_(ck.optimizer_state[i]);
  optimizer_->SetStepCount(ck.optimizer_step);
  checkpoint_iteration_ = iteration;
  return absl::OkStatus();
}

// Parameter names are global ("layers.7.wo"), so a stage of the new
// partition takes each of its parameters, with its two AdamW moments, from
// whichever old stage file holds it. Every file is checked before anything
// is copied, so a bad set of files leaves the runner as it was.
absl::Status StageRunnerImpl::RestoreRepartitioned(int64_t iteration, int written_by) {
  std::vector<Param*> params = AllParams();
  std::map<std::string, size_t> wanted;
  for (size_t i = 0; i < params.size(); ++i) wanted[params[i]->name] = i;
  struct Source {
    at::Tensor master, exp_avg, exp_avg_sq;
  };
  std::vector<Source> sources(params.size());
  std::vector<std::string> found_in(params.size());
  int64_t step = -1;
  for (int old_device = 0; old_device < written_by; ++old_device) {
    // Data-parallel replicas hold the same values; a rank whose file is
    // missing (it did not exist in the old attempt, or its disk was lost)
    // reads rank 0's.
    int rank = o_.data_rank;
    absl::StatusOr<StageCheckpoint> ck =
        ReadStageCheckpoint(checkpoint_dir_, iteration, old_device, rank);
    if (absl::IsNotFound(ck.status()) && rank != 0) {
      rank = 0;
      ck = ReadStageCheckpoint(checkpoint_dir_, iteration, old_device, rank);
    }
    if (!ck.ok()) return ck.status();
    const std::string path = StageCheckpointPath(checkpoint_dir_, iteration, old_device, rank);
    auto mismatch = [&](const std::string& why) {
      return absl::DataLossError(absl::StrCat("checkpoint ", path, " cannot be restored onto ",
                                              o_.schedule.num_devices, " stages: ", why));
    };
    if (ck->seed != o_.spec.training().seed()) {
      return mismatch(absl::StrCat("seed ", ck->seed, ", job seed ", o_.spec.training().seed()));
    }
    if (step >= 0 && ck->optimizer_step != step) {
      return mismatch(absl::StrCat("optimizer step ", ck->optimizer_step, ", other stages ", step));
    }
    step = ck->optimizer_step;
    if (ck->param_order.size() * 2 != ck->optimizer_state.size()) {
      return mismatch(
          "it does not record which parameter each optimizer moment belongs "
          "to (written by an older version), so it restores only onto the "
          "partition that wrote it");
    }
    for (size_t j = 0; j < ck->param_order.size(); ++j) {
      const std::string& name = ck->param_order[j];
      auto want = wanted.find(name);
      if (want == wanted.end()) continue;
      const size_t i = want->second;
      if (!found_in[i].empty()) {
        return mismatch(absl::StrCat("parameter ", name, " is also in ", found_in[i]));
      }
      auto master = ck->params.find(name);
      const auto& shape = params[i]->master.sizes();
      if (master == ck->params.end() || !master->second.sizes().equals(shape) ||
          !ck->optimizer_state[2 * j].sizes().equals(shape) ||
          !ck->optimizer_state[2 * j + 1].sizes().equals(shape)) {
        return mismatch(absl::StrCat("parameter ", name, " missing or resized"));
      }
      sources[i] = {master->second, ck->optimizer_state[2 * j], ck->optimizer_state[2 * j + 1]};
      found_in[i] = path;
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (found_in[i].empty()) {
      return absl::DataLossError(absl::StrCat(
          "checkpoint of iteration ", iteration, " under ", checkpoint_dir_, " (", written_by,
          " stages) has no parameter ", params[i]->name, ": it was written for another model"));
    }
  }
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> state = optimizer_->StateTensors();
  for (size_t i = 0; i < params.size(); ++i) {
    params[i]->master.copy_(sources[i].master);
    params[i]->SyncValue();
    state[2 * i].copy_(sources[i].exp_avg);
    state[2 * i + 1].copy_(sources[i].exp_avg_sq);
  }
  optimizer_->SetStepCount(step);
  checkpoint_iteration_ = iteration;
  return absl::OkStatus();
}

absl::Status StageRunnerImpl::Run(ProgressSink* sink) {
  // Intra-op threads: process-global in LibTorch, but OpenMP applies the
  // count per thread, so the thread that computes sets it again.
  if (o_.threads > 0) at::set_num_threads(o_.threads);
  DeviceRuntime* rt = extras_.device_runtime.get();
  std::shared_ptr<void> on_device = rt != nullptr ? rt->Enter() : nullptr;
  current_iteration_.store(o_.resume_iteration);
  const int64_t total = o_.spec.training().iterations();
  const int64_t last = o_.max_iterations > 0 ? std::min<int64_t>(o_.max_iterations, total) : total;
  try {
    if (o_.resume_iteration > 0) {
      CHRONOS_RETURN_IF_ERROR(Restore(o_.resume_iteration));
    }
  } catch (...) {
    return StatusFromCurrentException(
        absl::StrCat("device ", o_.device, ": restoring checkpoint ", o_.resume_iteration));
  }
  const int64_t every = o_.spec.training().checkpoint_every();
  const int64_t tokens =
      dims_.micro_batch * dims_.seq_len * static_cast<int64_t>(o_.schedule.num_microbatches);
  std::vector<Batch> batches;
  for (int64_t it = o_.resume_iteration + 1; it <= last; ++it) {
    if (stop_.load()) {
      return absl::CancelledError(
          absl::StrCat("device ", o_.device, ": stopped before iteration ", it));
    }
    const auto start = std::chrono::steady_clock::now();
    // Marked before a pushed schedule is taken, so a policy received while
    // iteration `it` runs is in force from `it` or `it + 1`.
    current_iteration_.store(it);
    CHRONOS_RETURN_IF_ERROR(ApplyPendingSchedule());
    if (rt != nullptr) rt->ResetPeaks();
    try {
      CHRONOS_RETURN_IF_ERROR(FetchBatches(it, &batches));
    } catch (...) {
      return StatusFromCurrentException(
          absl::StrCat("device ", o_.device, ": reading the data of iteration ", it));
    }
    CHRONOS_ASSIGN_OR_RETURN(IterationStats st, executor_->RunIteration(it, batches, &stop_));
    const bool requested = checkpoint_requested_.exchange(false);
    if ((every > 0 && it % every == 0) || requested) {
      try {
        CHRONOS_RETURN_IF_ERROR(WriteCheckpoint(it));
      } catch (...) {
        return StatusFromCurrentException(
            absl::StrCat("device ", o_.device, ": writing checkpoint ", it));
      }
    }
    v1::ProgressReport r;
    r.set_iteration(it);
    r.set_has_loss(st.has_loss);
    r.set_loss(st.loss);
    r.set_tokens(tokens);
    r.set_lr(LearningRate(adam_options_, it));
    r.set_grad_norm(st.grad_norm);
    r.set_policy_generation(policy_generation_);
    r.set_policy_received_iteration(policy_received_iteration_);
    r.set_offload_ratio(offload_ratio_);
    r.set_checkpoint_iteration(checkpoint_iteration_);
    v1::DeviceIteration* d = r.mutable_device();
    d->set_device(o_.device);
    d->set_data_rank(o_.data_rank);
    d->set_iteration_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    d->set_compute_seconds(st.compute_seconds);
    d->set_recompute_seconds(st.recompute_seconds);
    d->set_comm_wait_seconds(st.comm_wait_seconds);
    d->set_peak_activation_bytes(st.peak_resident_bytes);
    d->set_resident_activation_bytes(st.resident_bytes);
    d->set_peak_offloaded_bytes(st.peak_offloaded_bytes);
    d->set_offload_copied_bytes(st.offloaded_total_bytes);
    d->set_reload_copied_bytes(st.reloaded_total_bytes);
    if (rt != nullptr) {
      const DeviceMemoryStats m = rt->MemoryStats();
      d->set_hbm_allocated_bytes(m.allocated_bytes);
      d->set_hbm_reserved_bytes(m.reserved_bytes);
      d->set_hbm_peak_bytes(m.peak_allocated_bytes);
      const PinnedPoolStats p = rt->pinned_pool()->Stats();
      d->set_pinned_reserved_bytes(p.reserved_bytes);
      d->set_pinned_peak_bytes(p.peak_in_use_bytes);
      d->set_pinned_fallback_bytes(p.fallback_bytes);
    }
    if (sink != nullptr) CHRONOS_RETURN_IF_ERROR(sink->OnIteration(r));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StageRunner>> CreateStageRunner(StageRunnerOptions options,
                                                               std::unique_ptr<Communicator> comm,
                                                               StageRunnerExtras extras) {
  auto runner =
      std::make_unique<StageRunnerImpl>(std::move(options), std::move(comm), std::move(extras));
  absl::Status s;
  try {
    s = runner->Init();
  } catch (...) {
    s = StatusFromCurrentException("stage runner: building the stage");
  }
  if (!s.ok()) return s;
  return std::unique_ptr<StageRunner>(std::move(runner));
}

absl::StatusOr<std::unique_ptr<StageRunner>> StageRunner::Create(
    StageRunnerOptions options, std::unique_ptr<Communicator> comm) {
  return CreateStageRunner(std::move(options), std::move(comm), StageRunnerExtras{});
}

}  // namespace chronos::worker
