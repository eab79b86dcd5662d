// Schedule generators: pure functions from a pipeline shape (and, for the
// cost-aware ones, per-chunk durations) to a Schedule with explicit sends and
// receives. The registry maps the job spec's schedule.kind to a generator.
#ifndef CHRONOS_CORE_GENERATE_H_
#define CHRONOS_CORE_GENERATE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/schedule.h"

namespace chronos {

class OrderSearchMemo;  // core/order_search.h

// Per-chunk compute durations (seconds) the cost-aware generators use to lay
// out their steady state. Uniform costs (1, 1, 1) when empty.
struct ChunkCosts {
  std::vector<double> forward;          // F, per chunk
  std::vector<double> backward_input;   // BI, per chunk
  std::vector<double> backward_weight;  // BW, per chunk
  double p2p_seconds = 0.0;             // one stage-to-stage hop
  // B (BI and BW fused, one kernel-launch overhead), per chunk; only the
  // order search reads it, and falls back to BI + BW when it is empty.
  std::vector<double> backward;
  // Per chunk, what one micro-batch's activations hold with everything kept:
  // F's stash, and the weight-gradient stash BI leaves for BW. Only the
  // order search (OrderSearchOptions) reads them.
  std::vector<int64_t> kept_bytes;
  std::vector<int64_t> weight_stash_bytes;
};

// The order search of core/order_search.h, run on the generated order
// before sends and receives are added. Needs every field of ChunkCosts.
struct OrderSearchOptions {
  int64_t steps = 0;  // moves tried; 0 = no search
  // Every device's activation peak (everything kept) must stay at or under
  // this; 0 = the generated order's own worst peak (shorten it for free).
  int64_t activation_cap_bytes = 0;
  uint64_t seed = 1;
  int max_shift = 6;  // a move takes one action at most this many places
  // Where searched orders are remembered across plans (not part of what is
  // searched); null = search every time.
  OrderSearchMemo* memo = nullptr;
  // Polled every few hundred steps; true ends the search with kCancelled
  // (its caller was cancelled or ran out of time). Empty = never.
  std::function<bool()> should_stop;
};

// Knobs of the building-block generators (chronos, zbh1); the defaults
// reproduce the plain block. The planner (ScheduleCandidates,
// core/planner.cc) tries several.
struct BlockTuning {
  // List-schedule with the real costs instead of laying out a periodic
  // block: oldest BI first, then F of chunks already started, then a new
  // micro-batch's F while fewer than inflight_cap are in flight, then BW.
  bool greedy = false;
  bool uniform_costs = false;  // lay the block out with unit costs
  double period_scale = 0;     // T / busiest device's work; 0 = search
  double turn_delay = 0;       // idle inserted before the backward chain, in periods
  bool weights_first = false;  // finish ready BWs before a new micro-batch's F
  // Block only: the beam may also reserve each BI's BW in the slot right
  // behind it (one contiguous BI + BW on the device's circle; the chain
  // still leaves at BI's end). A glued BW frees its weight-gradient stash as
  // soon as it can, and, unlike a BW placed afterwards into whatever gaps
  // the chain left, it cannot be left without a slot: such a BW overlaps the
  // next op and stretches the real period past T.
  bool glue_weights = false;
  // Block only: the beam keeps only candidates that leave, on every device,
  // gaps into which everything still to be placed there fits (the chain's
  // later ops and the BWs of BIs placed unglued), and those BWs then go
  // where that packing found room, a period or more after their BI if need
  // be. No BW is left overlapping the next op, so the steady state runs at
  // T even where the circle has no slack; the chain waits more for its
  // slots and BWs run later, so the order holds more activations in flight
  // for less bubble.
  bool slot_weights = false;
  // List schedule only: device d admits at most as many micro-batches as its
  // first chunk's round trip needs to keep it busy, counting those whose BW
  // is pending (for a V, about p - d / 2), so a late device in the V does
  // not fill the cap with weight-gradient stashes it never needed.
  bool round_trip_caps = false;
  // Chronos-Pipe on a building-block V (core/v_shape_schedule.cc) instead of
  // its own block: 1 = V-Min's lifespans, 2 = V-Half's; 0 = not.
  int v_block = 0;
  // With v_block: the warm-up and cool-down may use up to this many chunk
  // activations per device (0 = the block's own peak, as published), so
  // the V starts and drains with less bubble at more memory.
  int squeeze_limit = 0;
};

struct ShapeSpec {
  std::string kind;           // gpipe | 1f1b | interleaved | zbh1 | vmin | vhalf | vzb | chronos
  int num_devices = 1;        // p
  int chunks_per_device = 0;  // v; 0 = the kind's default
  int num_microbatches = 1;   // m
  int inflight_cap = 0;       // max micro-batches in flight per device; 0 = auto
  std::vector<int> chunk_layers;  // layers per chunk (for the Schedule)
  ChunkCosts costs;
  BlockTuning block;
  OrderSearchOptions search;
};

// Known kinds, in the order `chronosctl plan` lists them.
const std::vector<std::string>& ScheduleKinds();
bool IsKnownScheduleKind(absl::string_view kind);
// The known kind that `kind` spells, ignoring case, '-' and '_' (so "ZB-H1"
// and "zb_h1" are "zbh1", "1F1B" is "1f1b"), plus the long names
// "chronos-pipe" and "interleaved-1f1b"; `kind` unchanged when it spells
// none, so that an error can quote what the user wrote.
std::string CanonicalScheduleKind(absl::string_view kind);
// V-Min, V-Half and V-ZB (two chunks per device on the V placement).
bool IsVShapeKind(absl::string_view kind);
// Default v for a kind: 1 for gpipe/1f1b/zbh1, 2 for the others.
int DefaultChunksPerDevice(absl::string_view kind);
// Megatron's interleaved table groups micro-batches p at a time: for that
// kind, m must be a multiple of p (kInvalidArgument naming both fields).
// The job spec's validation and CheckShape both use it.
absl::Status CheckMicrobatchGroups(absl::string_view kind, int p, int m);
// Checks that (kind, p, v, m) can be generated; kInvalidArgument naming the
// job-spec field (schedule.kind, parallel.chunks_per_device,
// training.microbatches, ...) otherwise.
absl::Status CheckShape(const ShapeSpec& shape);

// Generates compute actions, then inserts sends and receives. The result
// has no OFFLOAD/RELOAD/RECOMPUTE/ALLREDUCE/OPTIM_STEP yet (see
// core/memory_passes.h).
absl::StatusOr<Schedule> GenerateSchedule(const ShapeSpec& shape);

}  // namespace chronos

#endif  // CHRONOS_CORE_GENERATE_H_
