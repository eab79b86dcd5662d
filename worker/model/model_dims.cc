#include "worker/model/model_dims.h"

#include "chronos/v1/job.pb.h"
#include "worker/model/model_dims_from_spec.h"

namespace chronos::worker {

ModelDims ModelDimsFromSpec(const chronos::v1::JobSpec& spec, bool flash) {
  const chronos::v1::ModelSpec& m = spec.model();
  ModelDims d;
  d.layers = m.layers();
  d.hidden = m.hidden();
  d.heads = m.heads();
  d.ffn = m.ffn_hidden();
  d.vocab = m.vocab();
  d.seq_len = m.seq_len();
  d.micro_batch = spec.training().micro_batch_size() > 0
                      ? spec.training().micro_batch_size()
                      : 1;
  d.flash = flash;
  d.rope_theta = m.rope_theta() != 0 ? m.rope_theta() : 10000.0;
  d.norm_eps = m.norm_eps() != 0 ? m.norm_eps() : 1e-5;
  d.init_std = m.init_std() != 0 ? m.init_std() : 0.02;
  return d;
}

}  // namespace chronos::worker
