// A job spec at another width than it was submitted with: what recovery runs
// when it narrows a job onto fewer stages or data-parallel replicas. The
// coordinator plans and assigns with it; chronosctl shows it. Pure
// functions; thread-safe.
#ifndef CHRONOS_CORE_JOB_WIDTH_H_
#define CHRONOS_CORE_JOB_WIDTH_H_

#include "chronos/v1/job.pb.h"

namespace chronos {

// `spec` (defaulted) on `pipeline` stages x `data` replicas (0: the spec's
// own). An explicit layers_per_chunk is dropped at another pipeline width
// (it has one entry per chunk of the submitted one). With fewer replicas
// each runs more micro-batches, so the global batch stays the spec's:
// training.microbatches x parallel.data sequences of micro_batch_size. Only
// for widths where KeepsGlobalBatch holds. At another width the order search
// is off (schedule.order_search_steps 0): recovery plans narrower layouts
// while the job waits, several of them under the coordinator's lock, where
// a search of tens of seconds each has no place; schedule.activation_cap
// still binds.
v1::JobSpec SpecAtWidth(const v1::JobSpec& spec, int pipeline, int data);

// Whether `data` replicas can split the spec's global batch evenly.
bool KeepsGlobalBatch(const v1::JobSpec& spec, int data);

}  // namespace chronos

#endif  // CHRONOS_CORE_JOB_WIDTH_H_
