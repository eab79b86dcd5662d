#include "worker/model/model_dims.h"

#include "chronos/v1/job.pb.h"
#include "worker/model/model_dims_from_spec.h"

namespace chronos::worker {

ModelDims ModelDimsFromSpec(const chronos::v1::JobSpec& spec, bool flash) {
  const chronos::v1::ModelSpec& m = spec.model();
  ModelDims d;
  static_cast<ModelGeometry&>(d) = ModelGeometryFromSpec(spec, flash);
  d.rope_theta = m.rope_theta() != 0 ? m.rope_theta() : 10000.0;
  d.norm_eps = m.norm_eps() != 0 ? m.norm_eps() : 1e-5;
  d.init_std = m.init_std() != 0 ? m.init_std() : 0.02;
  return d;
}

}  // namespace chronos::worker
