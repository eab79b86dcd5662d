// Model dimensions and numerics shared by the worker's model code. Built from
// a chronos.v1.JobSpec by ModelDimsFromSpec (worker/model/model_dims.cc).
#ifndef CHRONOS_WORKER_MODEL_MODEL_DIMS_H_
#define CHRONOS_WORKER_MODEL_MODEL_DIMS_H_

#include <cstdint>

#include "core/model_geometry.h"

namespace chronos::worker {

// The shared geometry (core/model_geometry.h) plus the numerics only the
// model code needs.
struct ModelDims : ModelGeometry {
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;

  int64_t head_dim() const { return hidden / heads; }
};

// Which part of the model a chunk holds. Units are numbered inside the chunk:
// the embedding (if any) is unit 0, then the layers, then the head (if any).
struct ChunkSpec {
  int index = 0;        // chunk index in the whole model
  int first_layer = 0;  // global index of its first transformer layer
  int num_layers = 0;
  bool has_embedding = false;  // chunk 0
  bool has_head = false;       // last chunk: final norm, LM head, loss
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_MODEL_DIMS_H_
