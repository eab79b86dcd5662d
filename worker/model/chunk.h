// One model chunk: an optional token embedding (chunk 0), a run of LLaMA-style
// transformer layers (RMSNorm, rotary positions, causal multi-head attention,
// SwiGLU MLP) and an optional head (final RMSNorm, LM head, cross-entropy;
// the last chunk). Forward and backward are written explicitly from ATen ops,
// so the worker owns every saved tensor through the ActivationStash; the
// saved set is exactly core/activation_layout.h's.
//
// Units inside a chunk: embedding (if any) is unit 0, then the layers, then
// the head (if any). Not thread-safe; one executor thread drives a chunk.
#ifndef CHRONOS_WORKER_MODEL_CHUNK_H_
#define CHRONOS_WORKER_MODEL_CHUNK_H_

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/activation_layout.h"
#include "worker/model/model_dims.h"
#include "worker/stash.h"

namespace chronos::worker {

// A trainable tensor. `master` is fp32 (the optimizer updates it); `value`
// is what compute reads: the same tensor in fp32, a bf16 copy otherwise.
// `grad` is fp32 and accumulates over micro-batches.
struct Param {
  std::string name;  // e.g. "layers.3.wqkv", "embedding.wte", "head.w"
  at::Tensor master;
  at::Tensor value;
  at::Tensor grad;
  bool weight_decay = true;  // false for norm gains
  // Copies master into value after an optimizer step (no-op in fp32).
  void SyncValue();
};

class Chunk {
 public:
  // Parameters are created on `options.device()` in `options.dtype()` (the
  // compute dtype); their initial values depend only on (seed, global layer,
  // parameter name), so any partition of the model starts identically.
  Chunk(const ModelDims& dims, const ChunkSpec& spec, uint64_t seed, c10::TensorOptions options);
  ~Chunk();

  const ChunkSpec& spec() const { return spec_; }
  int num_units() const;
  UnitKind unit_kind(int unit) const;
  std::vector<Param*> params();

  // F. `input`: int64 token ids [b, s] for chunk 0, else the activation
  // [b, s, h]. `targets`: int64 [b, s] for the last chunk, else undefined.
  // Saves what `mode` keeps into `stash` under (mb, spec().index, unit, name).
  // Returns the output activation [b, s, h], or for the last chunk the
  // micro-batch's mean cross-entropy as a 0-dim fp32 tensor. The stash keeps
  // `input` and `targets` themselves, not copies (they are the unit inputs
  // the layout counts): do not write into them until B of this micro-batch.
  at::Tensor Forward(int mb, const at::Tensor& input, const at::Tensor& targets, SaveMode mode,
                     ActivationStash* stash);

  // RECOMPUTE. Chunk granularity: re-runs the whole chunk from its kept input
  // and stores the full stash. Layer/selective granularity: nothing here;
  // the backward rebuilds each unit just before it needs it, so only one
  // unit's internals exist at a time.
  void Recompute(int mb, ActivationStash* stash);

  // B. `grad_output`: gradient of the chunk's output [b, s, h]; undefined for
  // the last chunk, whose backward starts from its loss scaled by
  // `loss_scale` (d total_loss / d micro-batch token loss sum). Accumulates
  // parameter gradients, erases the stash of (mb, chunk) and returns the
  // gradient of the chunk's input (undefined for chunk 0).
  //
  // Per unit, in reverse order, the stash sees: Put(rebuilt tensors), then
  // Erase(the unit's forward tensors). The simulator models the same order.
  at::Tensor Backward(int mb, const at::Tensor& grad_output, double loss_scale,
                      ActivationStash* stash);

  // BI: like Backward but only norm-gain gradients are accumulated; per unit
  // the stash sees Put(rebuilt), Erase(forward tensors), Put(WeightGradStash).
  at::Tensor BackwardInput(int mb, const at::Tensor& grad_output, double loss_scale,
                           ActivationStash* stash);
  // BW: the weight gradients of the linear layers (and the embedding) from
  // the WeightGradStash, which it then erases.
  void BackwardWeight(int mb, ActivationStash* stash);

 private:
  struct Impl;
  ModelDims dims_;
  ChunkSpec spec_;
  std::unique_ptr<Impl> impl_;
};

// Deterministic initial value of one parameter: N(0, std) from a CPU
// generator seeded by a hash of (seed, layer, name), fp32 on the CPU (the
// caller moves it), so values do not depend on device or partition. `name` is
// the full Param name ("layers.3.wqkv"); `layer` is the global transformer
// layer index, -1 for the embedding and -2 for the head. Norm gains (names
// ending in g1, g2, gf) are ones and ignore `std`. The rule Chunk applies:
// std = init_std for wqkv, w_gate, w_up, embedding.wte and head.w, and
// init_std / sqrt(2 * layers) for wo and w_down (the projections that add to
// the residual stream). Used by Chunk and by the single-process reference in
// tests.
at::Tensor InitialParameter(uint64_t seed, int layer, const std::string& name,
                            at::IntArrayRef shape, double std);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_CHUNK_H_
