#include "core/generate.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/generators_internal.h"
#include "core/order_search.h"
#include "core/status_macros.h"

namespace chronos {

const std::vector<std::string>& ScheduleKinds() {
  static const auto* kinds = new std::vector<std::string>{
      "gpipe", "1f1b", "interleaved", "zbh1", "vmin", "vhalf", "vzb", "chronos"};
  return *kinds;
}

bool IsKnownScheduleKind(absl::string_view kind) {
  const auto& k = ScheduleKinds();
  return std::find(k.begin(), k.end(), std::string(kind)) != k.end();
}

std::string CanonicalScheduleKind(absl::string_view kind) {
  std::string key;
  for (char c : kind) {
    if (c != '-' && c != '_') key.push_back(absl::ascii_tolower(c));
  }
  if (key == "chronospipe") return "chronos";
  if (key == "interleaved1f1b") return "interleaved";
  if (key == "zbv") return "vzb";  // the zero-bubble paper's name for V-ZB
  for (const std::string& k : ScheduleKinds()) {
    if (key == k) return k;
  }
  return std::string(kind);
}

absl::Status CheckMicrobatchGroups(absl::string_view kind, int p, int m) {
  if (kind != "interleaved" || p < 1 || m % p == 0) return absl::OkStatus();
  // With a partial group Megatron's order can deadlock (p = 5, m = 7 does;
  // found by schedule_validator_fuzzer).
  return absl::InvalidArgumentError(absl::StrCat("training.microbatches (", m,
                                                 ") must be a multiple of parallel.pipeline (", p,
                                                 ") for schedule.kind interleaved"));
}

bool IsVShapeKind(absl::string_view kind) {
  return kind == "vmin" || kind == "vhalf" || kind == "vzb";
}

int DefaultChunksPerDevice(absl::string_view kind) {
  return (kind == "interleaved" || kind == "chronos" || IsVShapeKind(kind)) ? 2 : 1;
}

absl::Status CheckShape(const ShapeSpec& s) {
  if (!IsKnownScheduleKind(s.kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule.kind '", s.kind, "' is unknown; known: ", absl::StrJoin(ScheduleKinds(), ", ")));
  }
  if (s.num_devices < 1) {
    return absl::InvalidArgumentError("parallel.pipeline must be >= 1");
  }
  if (s.num_microbatches < 1) {
    return absl::InvalidArgumentError("training.microbatches must be >= 1");
  }
  const int v = s.chunks_per_device == 0 ? DefaultChunksPerDevice(s.kind) : s.chunks_per_device;
  if ((s.kind == "gpipe" || s.kind == "1f1b" || s.kind == "zbh1") && v != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parallel.chunks_per_device must be 1 for schedule.kind ", s.kind, " (got ", v, ")"));
  }
  if (IsVShapeKind(s.kind) && v != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parallel.chunks_per_device must be 2 for schedule.kind ", s.kind, " (got ", v, ")"));
  }
  if (s.kind == "interleaved" && v < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule.kind interleaved needs parallel.chunks_per_device >= 2 (got ", v, ")"));
  }
  if (absl::Status st = CheckMicrobatchGroups(s.kind, s.num_devices, s.num_microbatches);
      !st.ok()) {
    return st;
  }
  if (s.kind == "chronos" && (v < 2 || v % 2 != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule.kind chronos needs an even parallel.chunks_per_device >= 2 (got ", v, ")"));
  }
  const size_t C = static_cast<size_t>(s.num_devices) * v;
  if (!s.chunk_layers.empty() && s.chunk_layers.size() != C) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parallel.layers_per_chunk has ", s.chunk_layers.size(), " entries; expected ", C));
  }
  for (const auto* vec : {&s.costs.forward, &s.costs.backward_input, &s.costs.backward_weight}) {
    if (!vec->empty() && vec->size() != C) {
      return absl::InvalidArgumentError(
          "internal: chunk cost vectors do not match the chunk count");
    }
  }
  if (s.inflight_cap < 0) {
    return absl::InvalidArgumentError("schedule.inflight_cap must be >= 0 (0 = auto)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Schedule> GenerateSchedule(const ShapeSpec& shape_in) {
  CHRONOS_RETURN_IF_ERROR(CheckShape(shape_in));
  ShapeSpec shape = shape_in;
  if (shape.chunks_per_device == 0) shape.chunks_per_device = DefaultChunksPerDevice(shape.kind);
  const int p = shape.num_devices, v = shape.chunks_per_device, m = shape.num_microbatches;
  Schedule s;
  if (shape.kind == "gpipe") {
    s = internal::GPipeCompute(p, m);
  } else if (shape.kind == "1f1b") {
    s = internal::OneFOneBCompute(p, m);
  } else if (shape.kind == "interleaved") {
    s = internal::InterleavedCompute(p, v, m);
  } else if (shape.kind == "zbh1") {
    s = internal::ZeroBubbleH1Compute(p, m);
  } else if (shape.kind == "vmin" || shape.kind == "vhalf") {
    CHRONOS_ASSIGN_OR_RETURN(
        s, internal::VShapeCompute(shape.kind, p, m,
                                   shape.kind == "vmin" ? internal::VShapeMemory::kMin
                                                        : internal::VShapeMemory::kHalf));
  } else if (shape.kind == "vzb") {
    // V-ZB: the V list-scheduled with 1F1B's activation memory, p
    // micro-batches in flight per device (2p chunk activations).
    ShapeSpec zb = shape;
    if (zb.inflight_cap == 0) zb.inflight_cap = p;
    CHRONOS_ASSIGN_OR_RETURN(s, internal::GreedyCompute(zb, internal::VPlacement(p, v), true));
  } else if (shape.block.v_block > 0) {
    if (v != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("internal: a building-block V needs two chunks per device (got ", v, ")"));
    }
    CHRONOS_ASSIGN_OR_RETURN(
        s, internal::VShapeCompute(shape.kind, p, m,
                                   shape.block.v_block == 1 ? internal::VShapeMemory::kMin
                                                            : internal::VShapeMemory::kHalf,
                                   shape.block.squeeze_limit));
  } else if (shape.block.greedy) {
    CHRONOS_ASSIGN_OR_RETURN(s, internal::GreedyCompute(shape, internal::VPlacement(p, v), true));
  } else {
    CHRONOS_ASSIGN_OR_RETURN(s, internal::BlockCompute(shape, internal::VPlacement(p, v), true));
  }
  s.chunk_layers = shape.chunk_layers;
  if (shape.search.steps > 0) {
    CHRONOS_ASSIGN_OR_RETURN(s, SearchOrders(s, shape.costs, shape.search));
  }
  internal::InsertCommunication(&s);
  return s;
}

}  // namespace chronos
