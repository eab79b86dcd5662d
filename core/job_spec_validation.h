// Job-spec semantics: the defaults a spec gets before it is used, and the
// rules it must then satisfy. The coordinator runs both on every submitted
// spec and chronosctl runs them before sending one, so a user sees every
// problem at once, each naming its field. Pure functions; thread-safe.
#ifndef CHRONOS_CORE_JOB_SPEC_VALIDATION_H_
#define CHRONOS_CORE_JOB_SPEC_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "chronos/v1/job.pb.h"

namespace chronos {

// Fills every field whose zero value means "use the default" with that
// default (name "job", parallel.pipeline/data 1, schedule.kind "chronos",
// parallel.chunks_per_device from the kind, training.microbatches =
// parallel.pipeline, ...; docs/job-spec.md lists them all). Fields that have
// no sensible default (training.iterations, training.lr, model shape) stay
// zero so that ValidateJobSpec reports them. Idempotent.
void ApplyJobSpecDefaults(::chronos::v1::JobSpec* spec);

// The largest model.layers a spec may ask for (MaxLayers searches no
// further).
inline constexpr int kMaxModelLayers = 10000;

// The most order-search steps a spec may ask for: about twenty minutes of
// planning at p = 8, m = 32 with four chunks per device.
inline constexpr int64_t kMaxOrderSearchSteps = 100'000'000;

// Checks a spec after ApplyJobSpecDefaults. OK, or kInvalidArgument listing
// every problem, joined by "; ", each naming its field, its value and the
// rule ("model.layers must be >= 1 (got 0)"). Does not touch the file
// system: whether data.path exists or device.profile names a known profile
// is checked by whoever opens them.
absl::Status ValidateJobSpec(const ::chronos::v1::JobSpec& spec);

}  // namespace chronos

#endif  // CHRONOS_CORE_JOB_SPEC_VALIDATION_H_
