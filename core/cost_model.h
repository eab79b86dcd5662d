// The cost model: per-chunk compute time, saved-activation tensors, and
// parameter/gradient/optimizer bytes of a LLaMA-like model on a device
// profile. FLOPs count matrix products (2 per multiply-add) and causal
// attention (half the score matrix); time = FLOPs / (peak * efficiency)
// plus a fixed per-action overhead. Pure functions; safe from any thread.
#ifndef CHRONOS_CORE_COST_MODEL_H_
#define CHRONOS_CORE_COST_MODEL_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chronos/v1/job.pb.h"
#include "chronos/v1/profile.pb.h"
#include "core/activation_layout.h"
#include "core/generate.h"
#include "core/model_geometry.h"
#include "core/schedule.h"

namespace chronos {

struct ModelShape : ModelGeometry {
  bool mixed_precision = false;  // bf16 compute, fp32 master weights
  int64_t act_bytes = 4;         // bytes per element of the compute dtype

  int64_t LayerParams() const;             // 4h^2 + 3hf + 2h
  int64_t EmbeddingParams() const;         // V h
  int64_t HeadParams() const;              // V h + h
  int64_t ActivationMessageBytes() const;  // b s h, what a stage sends
};

// How a job computes, decided once from its spec and device profile: the
// planner's cost model and the worker both use it, so the worker runs the
// numerics the plan was made for. `attention: auto` is flash where the
// profile has it; `precision: auto` is bf16 compute (fp32 master weights
// and optimizer state) where the profile has bf16, else fp32.
struct Numerics {
  bool flash = false;
  bool mixed_precision = false;  // bf16 compute
};
Numerics ResolveNumerics(const v1::JobSpec& spec, const v1::DeviceProfile& profile);

// The model's shape with ResolveNumerics' precision and attention.
ModelShape ModelShapeFromSpec(const v1::JobSpec& spec, const v1::DeviceProfile& profile);

struct UnitCost {
  UnitKind kind = UnitKind::kLayer;
  double forward_flops = 0;
  double backward_input_flops = 0;
  double backward_weight_flops = 0;
  double selective_flops = 0;  // rebuilding the attention internals
  int64_t params = 0;
};

struct ChunkCost {
  int chunk = 0;
  int num_layers = 0;
  bool has_embedding = false;
  bool has_head = false;
  std::vector<UnitCost> units;  // embedding?, layers..., head?
  int64_t params = 0;
  // Seconds on the profile, including the per-action overhead.
  double forward_seconds = 0;
  double backward_input_seconds = 0;
  double backward_weight_seconds = 0;
  double backward_seconds = 0;  // B = BI + BW work, one overhead
  double forward_flops = 0;
  double backward_flops = 0;
  // Memory on the device, bytes.
  int64_t weight_bytes = 0;     // compute copy
  int64_t gradient_bytes = 0;   // fp32 accumulation
  int64_t optimizer_bytes = 0;  // moments (+ fp32 master in mixed precision)
};

class CostModel {
 public:
  CostModel(const ModelShape& shape, const v1::DeviceProfile& profile,
            std::vector<int> chunk_layers);

  const ModelShape& shape() const { return shape_; }
  const v1::DeviceProfile& profile() const { return profile_; }
  int num_chunks() const { return static_cast<int>(chunks_.size()); }
  const ChunkCost& chunk(int c) const { return chunks_[c]; }
  const std::vector<int>& chunk_layers() const { return chunk_layers_; }

  // Saved tensors of every unit of chunk `c` under `mode` (F's stash), and
  // the weight-gradient stash held between BI and BW.
  std::vector<std::vector<StashTensor>> KeptUnits(int c, SaveMode mode) const;
  std::vector<std::vector<StashTensor>> FullUnits(int c) const;
  std::vector<std::vector<StashTensor>> WeightGradUnits(int c) const;
  int64_t Bytes(const std::vector<StashTensor>& t) const;
  // Cached byte counts (the simulator asks for these per action).
  int64_t KeptBytes(int c, SaveMode mode) const;
  const std::vector<int64_t>& KeptUnitBytes(int c, SaveMode mode) const;
  const std::vector<int64_t>& WeightGradUnitBytes(int c) const;
  int64_t OffloadBytes(int c, SaveMode mode, double fraction) const;

  // Seconds to rebuild what `mode` dropped (0 for kAll).
  double RecomputeSeconds(int c, SaveMode mode) const;
  double ComputeSeconds(double flops, bool backward) const;
  double D2HSeconds(int64_t bytes) const;
  double H2DSeconds(int64_t bytes) const;
  double P2PSeconds(int64_t bytes) const;
  // Data-parallel ring all-reduce of the chunk's gradients over d replicas.
  double AllReduceSeconds(int c, int data_parallel) const;
  // Optimizer step for chunks `chunks`, state resident or streamed from
  // host memory (a fraction `offloaded` of it).
  double OptimizerSeconds(int64_t params, double offloaded) const;
  // FLOPs of one micro-batch through the whole model, F + B, no recompute.
  double ModelFlopsPerMicrobatch() const;

  // Replaces chunk c's modelled durations with measured (or, in tests,
  // hand-picked) ones. B becomes bi + bw.
  void SetChunkSeconds(int c, double forward, double backward_input, double backward_weight);
  // Durations of every chunk as the cost-aware generators want them.
  std::vector<double> ForwardSeconds() const;
  std::vector<double> BackwardInputSeconds() const;
  std::vector<double> BackwardWeightSeconds() const;
  std::vector<double> BackwardSeconds() const;  // B: BI + BW fused, one overhead

 private:
  ModelShape shape_;
  v1::DeviceProfile profile_;
  std::vector<int> chunk_layers_;
  std::vector<ChunkCost> chunks_;
  static constexpr int kModes = 4;
  // [chunk][mode] per-unit kept bytes and their sums; [chunk] W-stash.
  std::vector<std::array<std::vector<int64_t>, kModes>> kept_units_;
  std::vector<std::array<int64_t, kModes>> kept_total_;
  std::vector<std::vector<int64_t>> wgrad_units_;
};

// Layers per chunk for `num_chunks` chunks, minimizing the most expensive
// chunk (the embedding weighs on chunk 0, the head and loss on the last).
// `explicit_layout`, if non-empty, is validated and returned.
absl::StatusOr<std::vector<int>> PartitionLayers(const ModelShape& shape, int num_chunks,
                                                 const std::vector<int>& explicit_layout);

SaveMode SaveModeOf(const MemoryPolicy& policy);

// What the generators need to lay out `kind` on p devices with v chunks each
// and m micro-batches: the model's chunk layout, per-chunk durations and one
// stage-to-stage hop for an activation message.
ShapeSpec ScheduleShape(const std::string& kind, int p, int v, int m, const CostModel& costs);

}  // namespace chronos

#endif  // CHRONOS_CORE_COST_MODEL_H_
