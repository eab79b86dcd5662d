#include "core/cost_model.h"

#include <algorithm>
#include <numeric>
#include <queue>

#include "absl/strings/str_cat.h"

namespace chronos {

int64_t ModelShape::LayerParams() const {
  return 4 * hidden * hidden + 3 * hidden * ffn + 2 * hidden;
}
int64_t ModelShape::EmbeddingParams() const { return vocab * hidden; }
int64_t ModelShape::HeadParams() const { return vocab * hidden + hidden; }
int64_t ModelShape::ActivationMessageBytes() const { return tokens() * hidden * act_bytes; }

Numerics ResolveNumerics(const v1::JobSpec& spec, const v1::DeviceProfile& profile) {
  Numerics n;
  n.flash = profile.flash_attention();
  switch (spec.model().attention()) {
    case v1::ATTENTION_FLASH:
      n.flash = true;
      break;
    case v1::ATTENTION_STANDARD:
      n.flash = false;
      break;
    default:
      break;
  }
  switch (spec.training().precision()) {
    case v1::PRECISION_BF16:
      n.mixed_precision = true;
      break;
    case v1::PRECISION_FP32:
      n.mixed_precision = false;
      break;
    default:
      n.mixed_precision = profile.bf16();
      break;
  }
  return n;
}

ModelShape ModelShapeFromSpec(const v1::JobSpec& spec, const v1::DeviceProfile& profile) {
  const Numerics n = ResolveNumerics(spec, profile);
  ModelShape s;
  static_cast<ModelGeometry&>(s) = ModelGeometryFromSpec(spec, n.flash);
  s.mixed_precision = n.mixed_precision;
  s.act_bytes = s.mixed_precision ? 2 : 4;
  return s;
}

SaveMode SaveModeOf(const MemoryPolicy& policy) {
  if (policy.kind != PolicyKind::kRecompute) return SaveMode::kAll;
  switch (policy.granularity) {
    case Granularity::kLayer:
      return SaveMode::kLayer;
    case Granularity::kChunk:
      return SaveMode::kChunk;
    case Granularity::kSelective:
      return SaveMode::kSelective;
  }
  return SaveMode::kAll;
}

namespace {

UnitCost LayerUnit(const ModelShape& s) {
  const double t = static_cast<double>(s.tokens());
  const double h = static_cast<double>(s.hidden);
  const double f = static_cast<double>(s.ffn);
  const double linear = 2.0 * t * (4.0 * h * h + 3.0 * h * f);
  // Causal attention: QK^T and PV over half of the s x s scores.
  const double attention = 2.0 * static_cast<double>(s.micro_batch) *
                           static_cast<double>(s.seq_len) * static_cast<double>(s.seq_len) * h;
  UnitCost u;
  u.kind = UnitKind::kLayer;
  u.forward_flops = linear + attention;
  // Flash attention's backward recomputes the scores: 2.5x its forward.
  u.backward_input_flops = linear + (s.flash ? 2.5 : 2.0) * attention;
  u.backward_weight_flops = linear;
  u.selective_flops = 2.0 * t * 3.0 * h * h + attention;
  u.params = s.LayerParams();
  return u;
}

UnitCost EmbeddingUnit(const ModelShape& s) {
  UnitCost u;
  u.kind = UnitKind::kEmbedding;
  u.params = s.EmbeddingParams();
  // Gather and scatter-add: memory-bound, counted as one pass over the rows.
  u.backward_weight_flops = static_cast<double>(s.tokens() * s.hidden);
  return u;
}

UnitCost HeadUnit(const ModelShape& s) {
  const double t = static_cast<double>(s.tokens());
  const double logits = 2.0 * t * static_cast<double>(s.hidden * s.vocab);
  UnitCost u;
  u.kind = UnitKind::kHead;
  u.forward_flops = logits + 5.0 * t * static_cast<double>(s.vocab);
  u.backward_input_flops = logits;
  u.backward_weight_flops = logits;
  u.params = s.HeadParams();
  return u;
}

}  // namespace

CostModel::CostModel(const ModelShape& shape, const v1::DeviceProfile& profile,
                     std::vector<int> chunk_layers)
    : shape_(shape), profile_(profile), chunk_layers_(std::move(chunk_layers)) {
  const int n = static_cast<int>(chunk_layers_.size());
  const double overhead = profile_.kernel_overhead_seconds();
  const int64_t value_bytes = shape_.act_bytes;
  for (int c = 0; c < n; ++c) {
    ChunkCost cc;
    cc.chunk = c;
    cc.num_layers = chunk_layers_[c];
    cc.has_embedding = c == 0;
    cc.has_head = c == n - 1;
    if (cc.has_embedding) cc.units.push_back(EmbeddingUnit(shape_));
    for (int l = 0; l < cc.num_layers; ++l) cc.units.push_back(LayerUnit(shape_));
    if (cc.has_head) cc.units.push_back(HeadUnit(shape_));
    double fi = 0, bi = 0, bw = 0;
    for (const UnitCost& u : cc.units) {
      fi += u.forward_flops;
      bi += u.backward_input_flops;
      bw += u.backward_weight_flops;
      cc.params += u.params;
    }
    cc.forward_flops = fi;
    cc.backward_flops = bi + bw;
    cc.forward_seconds = ComputeSeconds(fi, false) + overhead;
    cc.backward_input_seconds = ComputeSeconds(bi, true) + overhead;
    cc.backward_weight_seconds = ComputeSeconds(bw, true) + overhead;
    cc.backward_seconds = ComputeSeconds(bi + bw, true) + overhead;
    cc.weight_bytes = cc.params * value_bytes;
    cc.gradient_bytes = cc.params * 4;
    // Adam moments, plus the fp32 master copy when compute is bf16.
    cc.optimizer_bytes = cc.params * (shape_.mixed_precision ? 12 : 8);
    chunks_.push_back(std::move(cc));
  }
  kept_units_.resize(n);
  kept_total_.resize(n);
  wgrad_units_.resize(n);
  for (int c = 0; c < n; ++c) {
    for (int mode = 0; mode < kModes; ++mode) {
      int64_t total = 0;
      for (const auto& u : KeptUnits(c, static_cast<SaveMode>(mode))) {
        kept_units_[c][mode].push_back(Bytes(u));
        total += kept_units_[c][mode].back();
      }
      kept_total_[c][mode] = total;
    }
    for (const auto& u : WeightGradUnits(c)) wgrad_units_[c].push_back(Bytes(u));
  }
}

const std::vector<int64_t>& CostModel::KeptUnitBytes(int c, SaveMode mode) const {
  return kept_units_[c][static_cast<int>(mode)];
}

const std::vector<int64_t>& CostModel::WeightGradUnitBytes(int c) const { return wgrad_units_[c]; }

double CostModel::ComputeSeconds(double flops, bool backward) const {
  const double eff = backward ? profile_.backward_efficiency() : profile_.forward_efficiency();
  return flops / (profile_.peak_flops() * std::max(eff, 1e-6));
}

std::vector<std::vector<StashTensor>> CostModel::KeptUnits(int c, SaveMode mode) const {
  std::vector<std::vector<StashTensor>> out;
  const auto dims = shape_.layout();
  const auto& units = chunks_[c].units;
  for (size_t u = 0; u < units.size(); ++u) {
    out.push_back(KeptStash(units[u].kind, dims, mode, u == 0));
  }
  return out;
}

std::vector<std::vector<StashTensor>> CostModel::FullUnits(int c) const {
  return KeptUnits(c, SaveMode::kAll);
}

std::vector<std::vector<StashTensor>> CostModel::WeightGradUnits(int c) const {
  std::vector<std::vector<StashTensor>> out;
  const auto dims = shape_.layout();
  for (const UnitCost& u : chunks_[c].units) {
    out.push_back(WeightGradStash(u.kind, dims));
  }
  return out;
}

int64_t CostModel::Bytes(const std::vector<StashTensor>& t) const {
  return StashBytes(t, shape_.tokens(), shape_.act_bytes);
}

int64_t CostModel::KeptBytes(int c, SaveMode mode) const {
  return kept_total_[c][static_cast<int>(mode)];
}

int64_t CostModel::OffloadBytes(int c, SaveMode mode, double fraction) const {
  if (fraction >= 1) return KeptBytes(c, mode);
  if (fraction <= 0) return 0;
  int64_t total = 0;
  for (const auto& u : KeptUnits(c, mode)) {
    total += chronos::OffloadedBytes(u, shape_.tokens(), shape_.act_bytes, fraction);
  }
  return total;
}

double CostModel::RecomputeSeconds(int c, SaveMode mode) const {
  const ChunkCost& cc = chunks_[c];
  double flops = 0;
  switch (mode) {
    case SaveMode::kAll:
      return 0;
    case SaveMode::kLayer:
    case SaveMode::kChunk:
      flops = cc.forward_flops;
      break;
    case SaveMode::kSelective:
      for (const UnitCost& u : cc.units) flops += u.selective_flops;
      break;
  }
  return ComputeSeconds(flops, false) + profile_.kernel_overhead_seconds();
}

double CostModel::D2HSeconds(int64_t bytes) const {
  return static_cast<double>(bytes) / profile_.d2h_bandwidth();
}
double CostModel::H2DSeconds(int64_t bytes) const {
  return static_cast<double>(bytes) / profile_.h2d_bandwidth();
}
double CostModel::P2PSeconds(int64_t bytes) const {
  return profile_.p2p_latency_seconds() + static_cast<double>(bytes) / profile_.p2p_bandwidth();
}

double CostModel::AllReduceSeconds(int c, int data_parallel) const {
  if (data_parallel <= 1) return 0;
  const double d = data_parallel;
  return 2.0 * (d - 1) / d * static_cast<double>(chunks_[c].gradient_bytes) /
         profile_.allreduce_bandwidth();
}

double CostModel::OptimizerSeconds(int64_t params, double offloaded) const {
  const double p = static_cast<double>(params);
  // Resident: read master, grad, m, v; write master, m, v (+ bf16 value).
  const double touched = p * (shape_.mixed_precision ? 30.0 : 28.0);
  double t = touched / profile_.hbm_bandwidth();
  if (offloaded > 0) {
    // Streamed: master + moments in and out over the host link, overlapped
    // with the update itself.
    const double state = p * offloaded * (shape_.mixed_precision ? 12.0 : 8.0);
    const double each_way =
        std::max(state / profile_.h2d_bandwidth(), state / profile_.d2h_bandwidth());
    const double both = 2.0 * state / profile_.duplex_bandwidth();
    t = std::max(t, std::max(each_way, both));
  }
  return t + profile_.kernel_overhead_seconds();
}

double CostModel::ModelFlopsPerMicrobatch() const {
  double f = 0;
  for (const ChunkCost& c : chunks_) f += c.forward_flops + c.backward_flops;
  return f;
}

void CostModel::SetChunkSeconds(int c, double forward, double backward_input,
                                double backward_weight) {
  ChunkCost& cc = chunks_[c];
  cc.forward_seconds = forward;
  cc.backward_input_seconds = backward_input;
  cc.backward_weight_seconds = backward_weight;
  cc.backward_seconds = backward_input + backward_weight;
}

std::vector<double> CostModel::ForwardSeconds() const {
  std::vector<double> v;
  for (const ChunkCost& c : chunks_) v.push_back(c.forward_seconds);
  return v;
}
std::vector<double> CostModel::BackwardInputSeconds() const {
  std::vector<double> v;
  for (const ChunkCost& c : chunks_) v.push_back(c.backward_input_seconds);
  return v;
}
std::vector<double> CostModel::BackwardWeightSeconds() const {
  std::vector<double> v;
  for (const ChunkCost& c : chunks_) v.push_back(c.backward_weight_seconds);
  return v;
}

std::vector<double> CostModel::BackwardSeconds() const {
  std::vector<double> v;
  for (const ChunkCost& c : chunks_) v.push_back(c.backward_seconds);
  return v;
}

absl::StatusOr<std::vector<int>> PartitionLayers(const ModelShape& shape, int num_chunks,
                                                 const std::vector<int>& explicit_layout) {
  if (num_chunks < 1) {
    return absl::InvalidArgumentError(
        "parallel.pipeline * parallel.chunks_per_device must be >= 1");
  }
  if (!explicit_layout.empty()) {
    if (static_cast<int>(explicit_layout.size()) != num_chunks) {
      return absl::InvalidArgumentError(
          absl::StrCat("parallel.layers_per_chunk has ", explicit_layout.size(),
                       " entries; expected ", num_chunks, " (pipeline * chunks_per_device)"));
    }
    int64_t sum = 0;
    for (int n : explicit_layout) {
      if (n < 1) {
        return absl::InvalidArgumentError("parallel.layers_per_chunk entries must be >= 1");
      }
      sum += n;
    }
    if (sum != shape.layers) {
      return absl::InvalidArgumentError(absl::StrCat("parallel.layers_per_chunk sums to ", sum,
                                                     "; expected model.layers ", shape.layers));
    }
    return explicit_layout;
  }
  if (shape.layers < num_chunks) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.layers (", shape.layers, ") must be >= the number of chunks (",
                     num_chunks, " = parallel.pipeline * parallel.chunks_per_device)"));
  }
  // Identical layers: filling the cheapest chunk one layer at a time
  // minimizes the most expensive chunk.
  const double layer = LayerUnit(shape).forward_flops + LayerUnit(shape).backward_input_flops +
                       LayerUnit(shape).backward_weight_flops;
  auto unit_total = [](const UnitCost& u) {
    return u.forward_flops + u.backward_input_flops + u.backward_weight_flops;
  };
  std::vector<double> extra(num_chunks, 0.0);
  extra[0] += unit_total(EmbeddingUnit(shape));
  extra[num_chunks - 1] += unit_total(HeadUnit(shape));
  std::vector<int> n(num_chunks, 1);
  using Item = std::pair<double, int>;  // (cost after adding a layer, chunk)
  auto cmp = [](const Item& a, const Item& b) {
    return a.first > b.first || (a.first == b.first && a.second > b.second);
  };
  std::priority_queue<Item, std::vector<Item>, decltype(cmp)> q(cmp);
  for (int c = 0; c < num_chunks; ++c) q.push({(n[c] + 1) * layer + extra[c], c});
  for (int64_t left = shape.layers - num_chunks; left > 0; --left) {
    auto [cost, c] = q.top();
    q.pop();
    ++n[c];
    q.push({(n[c] + 1) * layer + extra[c], c});
  }
  return n;
}

ShapeSpec ScheduleShape(const std::string& kind, int p, int v, int m, const CostModel& costs) {
  ShapeSpec shape;
  shape.kind = kind;
  shape.num_devices = p;
  shape.chunks_per_device = v;
  shape.num_microbatches = m;
  shape.chunk_layers = costs.chunk_layers();
  shape.costs.forward = costs.ForwardSeconds();
  shape.costs.backward_input = costs.BackwardInputSeconds();
  shape.costs.backward_weight = costs.BackwardWeightSeconds();
  shape.costs.backward = costs.BackwardSeconds();
  shape.costs.p2p_seconds = costs.P2PSeconds(costs.shape().ActivationMessageBytes());
  for (int c = 0; c < costs.num_chunks(); ++c) {
    shape.costs.kept_bytes.push_back(costs.KeptBytes(c, SaveMode::kAll));
    int64_t stash = 0;
    for (int64_t b : costs.WeightGradUnitBytes(c)) stash += b;
    shape.costs.weight_stash_bytes.push_back(stash);
  }
  return shape;
}

}  // namespace chronos
