// Model dimensions and numerics shared by the worker's model code. Built from
// a chronos.v1.JobSpec by ModelDimsFromSpec (worker/model/model_dims.cc).
#ifndef CHRONOS_WORKER_MODEL_MODEL_DIMS_H_
#define CHRONOS_WORKER_MODEL_MODEL_DIMS_H_

#include <cstdint>

#include "core/activation_layout.h"

namespace chronos::worker {

struct ModelDims {
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  int64_t seq_len = 0;
  int64_t micro_batch = 1;  // b
  bool flash = false;       // save log-sum-exp, rebuild probabilities in B
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;

  int64_t head_dim() const { return hidden / heads; }
  int64_t tokens() const { return micro_batch * seq_len; }
  LayoutDims layout() const {
    LayoutDims d;
    d.hidden = hidden;
    d.heads = heads;
    d.ffn = ffn;
    d.vocab = vocab;
    d.seq_len = seq_len;
    d.flash = flash;
    return d;
  }
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
