// The model's shape as every side reads it from a job spec: the cost model
// (ModelShape, core/cost_model.h) and the worker (ModelDims,
// worker/model/model_dims.h) extend it with what only they need, so the two
// cannot disagree on a dimension or on the saved-tensor layout.
#ifndef CHRONOS_CORE_MODEL_GEOMETRY_H_
#define CHRONOS_CORE_MODEL_GEOMETRY_H_

#include <cstdint>

#include "core/activation_layout.h"

namespace chronos {

namespace v1 {
class JobSpec;
}  // namespace v1

// The activation layout's dimensions (hidden, heads, ffn, vocab, seq_len,
// flash) are the base, so the stash sizes are computed from the very fields
// every side reads.
struct ModelGeometry : LayoutDims {
  int64_t layers = 0;
  int64_t micro_batch = 1;  // b

  int64_t tokens() const { return micro_batch * seq_len; }
  const LayoutDims& layout() const { return *this; }
};

// model.* and training.micro_batch_size (1 when unset). `flash` is the
// caller's: ATTENTION_AUTO depends on the device profile.
ModelGeometry ModelGeometryFromSpec(const v1::JobSpec& spec, bool flash);

}  // namespace chronos

#endif  // CHRONOS_CORE_MODEL_GEOMETRY_H_
