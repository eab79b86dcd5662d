#include "core/job_width.h"

#include <algorithm>
#include <cstdint>

namespace chronos {
namespace {

int64_t GlobalMicrobatches(const v1::JobSpec& spec) {
  return static_cast<int64_t>(spec.training().microbatches()) * std::max(1, spec.parallel().data());
}

}  // namespace

v1::JobSpec SpecAtWidth(const v1::JobSpec& spec, int pipeline, int data) {
  v1::JobSpec at = spec;
  bool other = false;
  if (pipeline > 0 && pipeline != spec.parallel().pipeline()) {
    at.mutable_parallel()->set_pipeline(pipeline);
    at.mutable_parallel()->clear_layers_per_chunk();
    other = true;
  }
  if (data > 0 && data != std::max(1, spec.parallel().data())) {
    at.mutable_parallel()->set_data(data);
    at.mutable_training()->set_microbatches(static_cast<int>(GlobalMicrobatches(spec) / data));
    other = true;
  }
  if (other) at.mutable_schedule()->set_order_search_steps(0);
  return at;
}

bool KeepsGlobalBatch(const v1::JobSpec& spec, int data) {
  return data >= 1 && GlobalMicrobatches(spec) % data == 0;
}

}  // namespace chronos
