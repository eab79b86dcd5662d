// Passes that turn a generated schedule (compute + communication) into the
// one workers run: each F gets its memory policy, with the OFFLOAD, RELOAD
// and RECOMPUTE actions it implies, then ALLREDUCE (data parallel) and
// OPTIM_STEP. Pure; any thread.
#ifndef CHRONOS_CORE_MEMORY_PASSES_H_
#define CHRONOS_CORE_MEMORY_PASSES_H_

#include <vector>

#include "absl/status/status.h"
#include "core/cost_model.h"
#include "core/schedule.h"

namespace chronos {

// policy[chunk][microbatch].
using PolicyTable = std::vector<std::vector<MemoryPolicy>>;

PolicyTable UniformPolicy(const Schedule& s, const MemoryPolicy& p);

struct MemoryPassOptions {
  int data_parallel = 1;
  // RELOAD is placed so that the compute actions between it and the
  // backward take at least this many times the copy's duration.
  double reload_lead = 1.5;
};

// Removes any memory actions already present, then: sets each F's policy;
// OFFLOAD right after its F; RELOAD early enough before the backward to hide
// the copy (never before its OFFLOAD); RECOMPUTE right before the backward;
// ALLREDUCE after each chunk's last backward when data_parallel > 1; and
// OPTIM_STEP at the end of every device.
absl::Status ApplyMemoryPolicy(Schedule* s, const PolicyTable& policy, const CostModel& costs,
                               const MemoryPassOptions& options = {});

}  // namespace chronos

#endif  // CHRONOS_CORE_MEMORY_PASSES_H_
