// Defaults and rules for job specs. Validation collects every problem
// rather than stopping at the first, because a user fixing a spec by trial
// and error should not need one submit per mistake.
#include "core/job_spec_validation.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/generate.h"

namespace chronos {
namespace {

// Sanity limits: far above any real job, low enough that products such as
// layers * hidden * hidden cannot overflow 64-bit arithmetic downstream.
constexpr int kMaxLayers = kMaxModelLayers;
constexpr int kMaxHidden = 1 << 17;
constexpr int kMaxVocab = 1 << 22;
constexpr int kMaxSeqLen = 1 << 20;
constexpr int kMaxFfnHidden = 1 << 20;
constexpr int kMaxHeads = 1 << 12;
constexpr int kMaxDevices = 4096;  // pipeline * data
// Planning time grows faster than linearly in the micro-batches: on the
// 2-core development machine a 2-stage plan took 1.4 s at 4096 and 34 s at
// 16384 (the coordinator plans a job before submit answers), so a larger m
// is refused up front rather than left to hold the coordinator busy.
constexpr int kMaxMicrobatches = 4096;
constexpr int kMaxNameLength = 63;  // a Kubernetes DNS label

class Problems {
 public:
  void Add(std::string problem) { list_.push_back(std::move(problem)); }

  // "<field> must be >= <min> (got <value>)"
  template <typename T>
  void AtLeast(absl::string_view field, T value, T min) {
    if (!(value >= min)) Add(absl::StrCat(field, " must be >= ", min, " (got ", value, ")"));
  }
  template <typename T>
  void AtMost(absl::string_view field, T value, T max) {
    if (!(value <= max)) Add(absl::StrCat(field, " must be <= ", max, " (got ", value, ")"));
  }
  template <typename T>
  void InRange(absl::string_view field, T value, T min, T max) {
    if (!(value >= min)) {
      AtLeast(field, value, min);
    } else {
      AtMost(field, value, max);
    }
  }
  // Doubles: also reject NaN and infinities, which every comparison lets
  // through silently.
  void Positive(absl::string_view field, double value) {
    if (!std::isfinite(value) || value <= 0) {
      Add(absl::StrCat(field, " must be a finite number > 0 (got ", value, ")"));
    }
  }
  void NonNegative(absl::string_view field, double value) {
    if (!std::isfinite(value) || value < 0) {
      Add(absl::StrCat(field, " must be a finite number >= 0 (got ", value, ")"));
    }
  }

  absl::Status ToStatus() const {
    if (list_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(list_, "; "));
  }

 private:
  std::vector<std::string> list_;
};

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!absl::ascii_islower(name.front())) return false;
  if (name.back() == '-') return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return false;
    }
  }
  return true;
}

void ValidateModel(const v1::ModelSpec& m, Problems* p) {
  p->InRange("model.layers", m.layers(), 1, kMaxLayers);
  p->InRange("model.hidden", m.hidden(), 1, kMaxHidden);
  p->InRange("model.heads", m.heads(), 1, kMaxHeads);
  p->InRange("model.ffn_hidden", m.ffn_hidden(), 1, kMaxFfnHidden);
  p->InRange("model.vocab", m.vocab(), 2, kMaxVocab);
  p->InRange("model.seq_len", m.seq_len(), 1, kMaxSeqLen);
  if (m.hidden() >= 1 && m.heads() >= 1) {
    if (m.hidden() % m.heads() != 0) {
      p->Add(absl::StrCat("model.hidden (", m.hidden(), ") must be divisible by model.heads (",
                          m.heads(), ")"));
    } else if ((m.hidden() / m.heads()) % 2 != 0) {
      // Rotary embeddings rotate pairs of channels within each head.
      p->Add(
          absl::StrCat("model.hidden / model.heads must be even for rotary "
                       "embeddings (got ",
                       m.hidden(), " / ", m.heads(), " = ", m.hidden() / m.heads(), ")"));
    }
  }
  if (!v1::AttentionImpl_IsValid(m.attention())) {
    p->Add(absl::StrCat("model.attention has unknown value ", m.attention()));
  }
  p->Positive("model.rope_theta", m.rope_theta());
  p->Positive("model.norm_eps", m.norm_eps());
  p->Positive("model.init_std", m.init_std());
}

void ValidateData(const v1::JobSpec& spec, Problems* p) {
  const v1::DataSpec& d = spec.data();
  if (d.path().empty()) p->Add("data.path must not be empty");
  if (!v1::DataFormat_IsValid(d.format()) || d.format() == v1::DATA_FORMAT_UNSPECIFIED) {
    p->Add(absl::StrCat("data.format must be text or llmc (got ", d.format(), ")"));
  }
  // Byte-level tokens take all 256 values.
  if (d.format() == v1::DATA_FORMAT_TEXT && spec.model().vocab() < 256) {
    p->Add(
        absl::StrCat("data.format text needs model.vocab >= 256 (got ", spec.model().vocab(), ")"));
  }
}

void ValidateTraining(const v1::JobSpec& spec, Problems* p) {
  const v1::TrainingSpec& t = spec.training();
  p->AtLeast("training.iterations", t.iterations(), 1);
  p->AtLeast("training.micro_batch_size", t.micro_batch_size(), 1);
  p->AtMost("training.microbatches", t.microbatches(), kMaxMicrobatches);
  // Fewer micro-batches than stages leaves stages with nothing to do.
  if (t.microbatches() < spec.parallel().pipeline()) {
    p->Add(absl::StrCat("training.microbatches (", t.microbatches(),
                        ") must be >= parallel.pipeline (", spec.parallel().pipeline(), ")"));
  } else if (absl::Status s = CheckMicrobatchGroups(spec.schedule().kind(),
                                                    spec.parallel().pipeline(), t.microbatches());
             !s.ok()) {
    // Also the generator's rule; here so a spec is refused before anything starts.
    p->Add(std::string(s.message()));
  }
  p->Positive("training.lr", t.lr());
  p->NonNegative("training.min_lr", t.min_lr());
  if (std::isfinite(t.lr()) && t.min_lr() > t.lr()) {
    p->Add(
        absl::StrCat("training.min_lr (", t.min_lr(), ") must be <= training.lr (", t.lr(), ")"));
  }
  if (t.warmup_iterations() < 0) {
    p->AtLeast("training.warmup_iterations", t.warmup_iterations(), 0);
  } else if (t.warmup_iterations() > t.iterations()) {
    p->Add(absl::StrCat("training.warmup_iterations (", t.warmup_iterations(),
                        ") must be <= training.iterations (", t.iterations(), ")"));
  }
  p->NonNegative("training.weight_decay", t.weight_decay());
  p->NonNegative("training.grad_clip", t.grad_clip());
  p->AtLeast("training.checkpoint_every", t.checkpoint_every(), 0);
  p->AtLeast("training.keep_checkpoints", t.keep_checkpoints(), 1);
  if (t.checkpoint_every() > 0 && t.checkpoint_dir().empty()) {
    p->Add(
        "training.checkpoint_dir must not be empty when "
        "training.checkpoint_every > 0");
  }
  for (const auto& [field, value] : {std::pair<const char*, double>{"training.beta1", t.beta1()},
                                     {"training.beta2", t.beta2()}}) {
    if (!(value >= 0 && value < 1)) {
      p->Add(absl::StrCat(field, " must be in [0, 1) (got ", value, ")"));
    }
  }
  p->Positive("training.eps", t.eps());
  if (!v1::Precision_IsValid(t.precision())) {
    p->Add(absl::StrCat("training.precision has unknown value ", t.precision()));
  }
}

// Layout: p, d, v, and the explicit per-chunk layer counts.
void ValidateParallel(const v1::JobSpec& spec, Problems* p) {
  const v1::ParallelSpec& par = spec.parallel();
  const std::string& kind = spec.schedule().kind();
  p->AtLeast("parallel.pipeline", par.pipeline(), 1);
  p->AtLeast("parallel.data", par.data(), 1);
  if (par.pipeline() >= 1 && par.data() >= 1 &&
      int64_t{par.pipeline()} * par.data() > kMaxDevices) {
    p->Add(absl::StrCat("parallel.pipeline * parallel.data must be <= ", kMaxDevices,
                        " devices (got ", par.pipeline(), " * ", par.data(), ")"));
  }

  const int v = par.chunks_per_device();
  bool v_ok = v >= 1;
  if (!v_ok) {
    p->AtLeast("parallel.chunks_per_device", v, 1);
  } else if (IsKnownScheduleKind(kind)) {
    const int want = DefaultChunksPerDevice(kind);
    if (kind == "interleaved") {
      // Megatron's interleaving needs at least two chunks per device.
      if (v < 2) {
        p->Add(
            absl::StrCat("schedule.kind interleaved needs "
                         "parallel.chunks_per_device >= 2 (got ",
                         v, ")"));
        v_ok = false;
      }
    } else if (v != want && want == 1) {
      p->Add(
          absl::StrCat("parallel.chunks_per_device must be 1 for "
                       "schedule.kind ",
                       kind, " (got ", v, ")"));
      v_ok = false;
    } else if (IsVShapeKind(kind) && v != 2) {
      // The V-Min/V-Half building blocks and V-ZB are two-chunk Vs.
      p->Add(absl::StrCat("parallel.chunks_per_device must be 2 for schedule.kind ", kind, " (got ",
                          v, ")"));
      v_ok = false;
    } else if (kind == "chronos" && (v < 2 || v % 2 != 0)) {
      // The V placement folds the chunk sequence back and forth across the
      // devices, so each device holds an even number of chunks.
      p->Add(
          absl::StrCat("schedule.kind chronos needs an even "
                       "parallel.chunks_per_device >= 2 (got ",
                       v, ")"));
      v_ok = false;
    }
  }
  if (!v_ok || par.pipeline() < 1) return;

  const int64_t chunks = int64_t{par.pipeline()} * v;
  const int layers = spec.model().layers();
  if (layers >= 1 && layers < chunks) {
    p->Add(absl::StrCat("model.layers (", layers,
                        ") must be >= parallel.pipeline * "
                        "parallel.chunks_per_device (",
                        chunks, ") chunks: every chunk needs a layer"));
  }
  if (par.layers_per_chunk_size() == 0) return;
  if (par.layers_per_chunk_size() != chunks) {
    p->Add(absl::StrCat("parallel.layers_per_chunk has ", par.layers_per_chunk_size(),
                        " entries; expected ", chunks,
                        " (parallel.pipeline * "
                        "parallel.chunks_per_device)"));
  }
  int64_t sum = 0;
  for (int i = 0; i < par.layers_per_chunk_size(); ++i) {
    const int n = par.layers_per_chunk(i);
    if (n < 1) {
      p->Add(absl::StrCat("parallel.layers_per_chunk[", i, "] must be >= 1 (got ", n, ")"));
    }
    sum += n;
  }
  if (sum != layers) {
    p->Add(absl::StrCat("parallel.layers_per_chunk sums to ", sum, "; expected model.layers ",
                        layers));
  }
}

// A size given as a multiple of 1F1B's activations ("0.5x") or in bytes,
// not both; the multiple is positive and at most kMaxRelativeSize.
void CheckRelativeSize(absl::string_view field, int64_t bytes, double ratio, Problems* p) {
  constexpr double kMaxRelativeSize = 64;
  if (ratio == 0) return;
  if (!(ratio > 0 && ratio <= kMaxRelativeSize)) {
    p->Add(absl::StrCat(field, " must be a multiple in (0, ", kMaxRelativeSize,
                        "] of 1F1B's activations, such as 0.5x (got ", ratio, "x)"));
  }
  if (bytes != 0) {
    p->Add(
        absl::StrCat(field, " is given both as a size and as a multiple (", ratio, "x); give one"));
  }
}

void ValidateSchedule(const v1::ScheduleSpec& s, Problems* p) {
  if (!IsKnownScheduleKind(s.kind())) {
    p->Add(absl::StrCat("schedule.kind '", s.kind(),
                        "' is unknown; known: ", absl::StrJoin(ScheduleKinds(), ", ")));
  }
  p->AtLeast("schedule.inflight_cap", s.inflight_cap(), 0);
  p->InRange<int64_t>("schedule.order_search_steps", s.order_search_steps(), 0,
                      kMaxOrderSearchSteps);
  p->AtLeast<int64_t>("schedule.activation_cap", s.activation_cap_bytes(), 0);
  CheckRelativeSize("schedule.activation_cap", s.activation_cap_bytes(), s.activation_cap_ratio(),
                    p);
}

void ValidateMemory(const v1::MemorySpec& m, Problems* p) {
  p->AtLeast<int64_t>("memory.hbm_budget", m.hbm_budget_bytes(), 0);
  p->AtLeast<int64_t>("memory.activation_budget", m.activation_budget_bytes(), 0);
  CheckRelativeSize("memory.activation_budget", m.activation_budget_bytes(),
                    m.activation_budget_ratio(), p);
  if (m.has_offload_ratio() && !(m.offload_ratio() >= 0 && m.offload_ratio() <= 1)) {
    p->Add(absl::StrCat("memory.offload_ratio must be in [0, 1] or auto (got ", m.offload_ratio(),
                        ")"));
  }
  if (!v1::RecomputeMode_IsValid(m.recompute())) {
    p->Add(absl::StrCat("memory.recompute has unknown value ", m.recompute()));
  }
  if (!v1::OptimizerOffload_IsValid(m.optimizer_offload())) {
    p->Add(absl::StrCat("memory.optimizer_offload has unknown value ", m.optimizer_offload()));
  }
}

}  // namespace

void ApplyJobSpecDefaults(v1::JobSpec* spec) {
  if (spec->name().empty()) spec->set_name("job");

  v1::ModelSpec* model = spec->mutable_model();
  if (model->rope_theta() == 0) model->set_rope_theta(10000.0);
  if (model->norm_eps() == 0) model->set_norm_eps(1e-5);
  if (model->init_std() == 0) model->set_init_std(0.02);

  v1::DataSpec* data = spec->mutable_data();
  if (data->format() == v1::DATA_FORMAT_UNSPECIFIED) {
    data->set_format(v1::DATA_FORMAT_TEXT);
  }

  v1::ScheduleSpec* schedule = spec->mutable_schedule();
  if (schedule->kind().empty()) schedule->set_kind("chronos");
  schedule->set_kind(CanonicalScheduleKind(schedule->kind()));

  v1::ParallelSpec* parallel = spec->mutable_parallel();
  if (parallel->pipeline() == 0) parallel->set_pipeline(1);
  if (parallel->data() == 0) parallel->set_data(1);
  // An unknown kind has no default; validation reports the kind instead.
  if (parallel->chunks_per_device() == 0 && IsKnownScheduleKind(schedule->kind())) {
    parallel->set_chunks_per_device(DefaultChunksPerDevice(schedule->kind()));
  }

  v1::TrainingSpec* training = spec->mutable_training();
  if (training->micro_batch_size() == 0) training->set_micro_batch_size(1);
  if (training->microbatches() == 0) {
    training->set_microbatches(parallel->pipeline());
  }
  if (training->min_lr() == 0 && training->lr() > 0) {
    training->set_min_lr(training->lr() / 10);
  }
  if (training->beta1() == 0) training->set_beta1(0.9);
  if (training->beta2() == 0) training->set_beta2(0.95);
  if (training->eps() == 0) training->set_eps(1e-8);
  if (training->keep_checkpoints() == 0) training->set_keep_checkpoints(3);
  if (training->checkpoint_dir().empty()) {
    training->set_checkpoint_dir("./checkpoints");
  }

  v1::DeviceSpec* device = spec->mutable_device();
  if (device->profile().empty() && !device->has_custom()) {
    device->set_profile("cpu");
  }
}

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  Problems p;
  if (!IsValidName(spec.name())) {
    p.Add(absl::StrCat("name '", spec.name(),
                       "' must be 1-63 characters of [a-z0-9-], start with a "
                       "letter and not end with '-' (a Kubernetes DNS label)"));
  }
  ValidateModel(spec.model(), &p);
  ValidateData(spec, &p);
  ValidateTraining(spec, &p);
  ValidateSchedule(spec.schedule(), &p);
  ValidateParallel(spec, &p);
  ValidateMemory(spec.memory(), &p);
  if (spec.device().profile().empty() && !spec.device().has_custom()) {
    p.Add(
        "device.profile must name a built-in profile (cpu, h100, ...) or a "
        "profile file");
  }
  return p.ToStatus();
}

}  // namespace chronos
