#include "core/model_geometry.h"

#include <algorithm>

#include "chronos/v1/job.pb.h"

namespace chronos {

ModelGeometry ModelGeometryFromSpec(const v1::JobSpec& spec, bool flash) {
  const v1::ModelSpec& m = spec.model();
  ModelGeometry g;
  g.layers = m.layers();
  g.hidden = m.hidden();
  g.heads = m.heads();
  g.ffn = m.ffn_hidden();
  g.vocab = m.vocab();
  g.seq_len = m.seq_len();
  g.micro_batch = std::max(1, spec.training().micro_batch_size());
  g.flash = flash;
  return g;
}

}  // namespace chronos
