// The math of one LLaMA-style transformer layer, forward and explicit
// backward, on plain tensors (the Chunk moves them in and out of the stash):
//
//   xn1 = rmsnorm(x; g1)            q, k, v = split(xn1 @ wqkv^T), rope on q, k
//   attn = causal_attention(q, k, v)          x2 = x + attn @ wo^T
//   xn2 = rmsnorm(x2; g2)  gate = xn2 @ w_gate^T  up = xn2 @ w_up^T
//   act = silu(gate) * up                     out = x2 + act @ w_down^T
//
// The forward is "fill in whatever is missing" (Rebuild), so a first forward,
// a chunk recompute and a per-layer rebuild in the backward run the very same
// ops and produce bit-identical tensors. One TransformerLayer serves every
// layer of a chunk (it holds the rope and mask tables, not weights).
// Immutable after construction; no autograd.
#ifndef CHRONOS_WORKER_MODEL_TRANSFORMER_LAYER_H_
#define CHRONOS_WORKER_MODEL_TRANSFORMER_LAYER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

#include "worker/model/attention.h"
#include "worker/model/model_dims.h"
#include "worker/model/rope.h"

namespace chronos::worker {

// The compute values (Param::value) of one layer's parameters.
struct LayerWeights {
  at::Tensor wqkv;    // [3h, h], rows: q, then k, then v
  at::Tensor wo;      // [h, h]
  at::Tensor w_gate;  // [f, h]
  at::Tensor w_up;    // [f, h]
  at::Tensor w_down;  // [h, f]
  at::Tensor g1;      // [h]
  at::Tensor g2;      // [h]
};

// What a layer's forward saves (core ForwardStash(kLayer) names). Undefined
// members are missing; exactly one of probs and lse is used.
struct LayerSaved {
  at::Tensor x;      // [b, s, h] input
  at::Tensor rstd1;  // [b, s, 1] fp32
  at::Tensor q;      // [b, heads, s, hd] after rope
  at::Tensor k;      // [b, heads, s, hd] after rope
  at::Tensor v;      // [b, heads, s, hd]
  at::Tensor probs;  // [b, heads, s, s] standard attention
  at::Tensor lse;    // [b, heads, s] fp32, flash attention
  at::Tensor attn;   // [b, s, h] merged heads
  at::Tensor x2;     // [b, s, h]
  at::Tensor rstd2;  // [b, s, 1] fp32
  at::Tensor gate;   // [b, s, f]
  at::Tensor up;     // [b, s, f]

  // The member stored under a layout name; throws for an unknown name.
  at::Tensor* Field(const std::string& name);
};

// Inputs of the linear layers and gradients of their outputs, held from BI to
// BW (core WeightGradStash(kLayer) names).
struct LayerWGradInputs {
  at::Tensor xn1;    // [b, s, h]
  at::Tensor dqkv;   // [b, s, 3h] w.r.t. q, k (before rope) and v
  at::Tensor attn;   // [b, s, h]
  at::Tensor dproj;  // "do": [b, s, h], gradient of attn @ wo^T
  at::Tensor xn2;    // [b, s, h]
  at::Tensor dgate;  // [b, s, f]
  at::Tensor dup;    // [b, s, f]
  at::Tensor act;    // [b, s, f]
  at::Tensor dmlp;   // [b, s, h], gradient of act @ w_down^T

  at::Tensor* Field(const std::string& name);
};

// Weight gradients in the compute dtype, shaped like the weights.
struct LayerWeightGrads {
  at::Tensor wqkv, wo, w_gate, w_up, w_down;
};

class TransformerLayer {
 public:
  TransformerLayer(const ModelDims& dims, c10::Device device);

  // Computes every missing member of *s from the ones present; s->x must be
  // present. Members present are taken as they are.
  void Rebuild(const LayerWeights& w, LayerSaved* s) const;
  // The layer output x2 + silu(gate) * up @ w_down^T from a complete *s.
  at::Tensor Output(const LayerWeights& w, const LayerSaved& s) const;

  // Input gradient (x's dtype) from the output gradient `dout` and a complete
  // `s`; fills *wg and the fp32 norm-gain gradients *dg1, *dg2.
  at::Tensor BackwardInput(const LayerWeights& w, const LayerSaved& s, const at::Tensor& dout,
                           LayerWGradInputs* wg, at::Tensor* dg1, at::Tensor* dg2) const;
  LayerWeightGrads BackwardWeight(const LayerWGradInputs& wg) const;

 private:
  ModelDims dims_;
  Rope rope_;
  CausalAttention attention_;
};

// dy^T @ x over all tokens: the gradient of W in y = x @ W^T.
at::Tensor LinearWeightGrad(const at::Tensor& dy, const at::Tensor& x);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_MODEL_TRANSFORMER_LAYER_H_
