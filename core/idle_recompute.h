// Recomputation in idle time, after Lynx ("Optimizing Large Model Training
// through Overlapped Activation Recomputation"). ApplyMemoryPolicy puts each
// RECOMPUTE right before its backward: if the backward's gradient is already
// there, the rebuild sits on the critical path. A device also idles earlier,
// waiting for another device's activation or gradient before an F or a BI;
// a RECOMPUTE moved in front of such a waiting consumer runs in that wait.
// The rebuilt activations then live longer, so each move is kept only if the
// replay is faster and every device still fits its budgets. Pure.
#ifndef CHRONOS_CORE_IDLE_RECOMPUTE_H_
#define CHRONOS_CORE_IDLE_RECOMPUTE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/cost_model.h"
#include "core/schedule.h"
#include "core/simulator.h"

namespace chronos {

// Positions on `device` in front of which the RECOMPUTE at `index` could
// run while the device waits: compute actions after the recomputed chunk's
// F whose input comes from another device (an F whose previous chunk, or a
// backward whose next chunk, lives elsewhere), nearest first. Empty when
// `index` is not a RECOMPUTE.
std::vector<int> IdleRecomputeSlots(const Schedule& s, int device, int index);

// Moves the action at `from` on `device` so that it runs right before the
// action now at `to` (to < from).
void MoveActionBefore(Schedule* s, int device, int from, int to);

struct IdleRecomputeOptions {
  SimOptions sim;                 // how the plan is replayed
  int64_t hbm_budget = 0;         // every device's peak at or under; 0 = none
  int64_t activation_budget = 0;  // every device's activation peak; 0 = none
  int max_replays = 256;          // bounds the planning time
};

// Tries each RECOMPUTE, device by device, in front of its idle slots,
// nearest first, keeping a move when the replay is faster and fits.
// Updates `s` and `sim` (which must be `s`'s replay); returns how many
// RECOMPUTEs moved.
absl::StatusOr<int> PlaceRecomputesInIdleTime(Schedule* s, SimResult* sim, const CostModel& costs,
                                              const IdleRecomputeOptions& options);

}  // namespace chronos

#endif  // CHRONOS_CORE_IDLE_RECOMPUTE_H_
