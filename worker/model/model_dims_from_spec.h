// Builds the worker's ModelDims from a job spec. Separate from model_dims.h so
// that the model code does not pull in the generated Protobuf headers.
#ifndef CHRONOS_WORKER_MODEL_MODEL_DIMS_FROM_SPEC_H_
#define CHRONOS_WORKER_MODEL_MODEL_DIMS_FROM_SPEC_H_

#include "worker/model/model_dims.h"

namespace chronos::v1 {
class JobSpec;
}  // namespace chronos::v1

namespace chronos::worker {

// Dimensions of `spec`'s model with its micro-batch size. `flash` is decided
// by the caller (ATTENTION_AUTO depends on the device profile). Zero spec
// fields take their documented defaults: rope_theta 10000, norm_eps 1e-5,
// init_std 0.02, micro-batch size 1.
ModelDims ModelDimsFromSpec(const chronos::v1::JobSpec& spec, bool flash);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_MODEL_DIMS_FROM_SPEC_H_
