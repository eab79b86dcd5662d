// Compute-only generators behind GenerateSchedule (core/generate.h). Each
// returns per-device orders of F/B/BI/BW; sends and receives are added by
// InsertCommunication. Not part of the public API.
#ifndef CHRONOS_CORE_GENERATORS_INTERNAL_H_
#define CHRONOS_CORE_GENERATORS_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/generate.h"
#include "core/schedule.h"

namespace chronos::internal {

// chunk -> device for chunk c = k*p + i: device i (looped placement).
std::vector<int> LoopedPlacement(int p, int v);
// V (zig-zag) placement: the k-th group of p chunks runs down the devices
// when k is even and back up when k is odd; for v = 2 device i holds chunks
// i and 2p-1-i.
std::vector<int> VPlacement(int p, int v);

// A schedule with its shape and placement set and an empty list per device.
Schedule Skeleton(const std::string& kind, int p, int v, int m, std::vector<int> placement);

Schedule GPipeCompute(int p, int m);
Schedule OneFOneBCompute(int p, int m);
// ZB-H1 as Qi et al. publish it: 1F1B's warm-up with B split into BI and
// BW, device d deferring its BWs by d micro-batches.
Schedule ZeroBubbleH1Compute(int p, int m);
// Megatron's interleaved 1F1B: micro-batches in groups of p per model
// chunk, warm-up (p-i-1)*2 + (v-1)*p forwards on device i.
Schedule InterleavedCompute(int p, int v, int m);

// Periodic building-block schedules (Chronos-Pipe, ZB-H1): lays one
// micro-batch's ops out on a period T so no device is double-booked, then
// repeats it every T and orders each device's ops by their target times.
// Backward split into BI and BW when `split`; BW fills the free slots.
absl::StatusOr<Schedule> BlockCompute(const ShapeSpec& shape, std::vector<int> placement,
                                      bool split);

// The building-block V schedules of Qi et al. (NeurIPS 2024), two chunks
// per device on the V placement: V-Min (activations of about p chunk
// forwards per device, half of 1F1B's) and V-Half (about p/2 + 1 more).
enum class VShapeMemory { kMin, kHalf };
// `memory_limit` (chunk activations per device) lets the squeeze use more
// memory than the block's own peak; 0 = the block's peak, as published.
// The schedule is labelled `kind`.
absl::StatusOr<Schedule> VShapeCompute(const std::string& kind, int p, int m, VShapeMemory memory,
                                       int memory_limit = 0);

// List scheduling with the real costs (BlockTuning::greedy). Per chunk,
// F, BI and BW run in micro-batch order, so every channel stays FIFO; the
// order is a causal replay, hence deadlock-free.
absl::StatusOr<Schedule> GreedyCompute(const ShapeSpec& shape, std::vector<int> placement,
                                       bool split);

// Adds SEND_*/RECV_* around every compute action whose producer or consumer
// chunk lives on another device: RECV right before the consumer, SEND right
// after the producer.
void InsertCommunication(Schedule* s);

}  // namespace chronos::internal

#endif  // CHRONOS_CORE_GENERATORS_INTERNAL_H_
