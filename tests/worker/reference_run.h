// The single-process reference's run of a TinyJob: the independent autograd
// model (tests/worker/reference_gpt) trained on the same micro-batches, with
// the reference AdamW, for the pipeline tests to compare against.
#ifndef CHRONOS_TESTS_WORKER_REFERENCE_RUN_H_
#define CHRONOS_TESTS_WORKER_REFERENCE_RUN_H_

#include <vector>

#include "chronos/v1/job.pb.h"
#include "tests/worker/pipeline_harness.h"
#include "tests/worker/reference_gpt.h"

namespace chronos::worker::testing {

// Loss per iteration and the gradients of iteration 1.
struct Reference {
  std::vector<double> losses;
  reference::NamedTensors first_grads;
};

Reference RunReference(const v1::JobSpec& spec, const TinyJob& job);

}  // namespace chronos::worker::testing

#endif  // CHRONOS_TESTS_WORKER_REFERENCE_RUN_H_
