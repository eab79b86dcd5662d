// The exact set of tensors a chunk saves for its backward, per "unit" (the
// embedding, each transformer layer, the head), under each memory policy.
//
// This file is the contract between the cost model/simulator (which count
// these bytes) and the worker (whose stash holds exactly these tensors, with
// these names and sizes). Changing one side without the other breaks the
// ledger == simulator test. Pure data; safe from any thread.
#ifndef CHRONOS_CORE_ACTIVATION_LAYOUT_H_
#define CHRONOS_CORE_ACTIVATION_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

// Element type of a saved tensor. kAct is the compute dtype (fp32 on CPU,
// bf16 on GPU); statistics and the loss's probabilities are always fp32.
enum class StashDtype { kAct, kF32, kI64 };

int64_t StashDtypeBytes(StashDtype dtype, int64_t act_bytes);

// One saved tensor; its element count is elements_per_token * tokens, where
// tokens = micro_batch_size * seq_len.
struct StashTensor {
  std::string name;
  StashDtype dtype;
  int64_t elements_per_token;
};

enum class UnitKind { kEmbedding, kLayer, kHead };

// Model dimensions the layout depends on.
struct LayoutDims {
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t ffn = 0;
  int64_t vocab = 0;
  int64_t seq_len = 0;
  bool flash = false;  // save log-sum-exp instead of the probability matrix
};

// What survives F under a policy (mirrors chronos.v1.PolicyKind/Granularity).
enum class SaveMode {
  kAll,        // keep or offload: every tensor of ForwardStash
  kLayer,      // recompute, layer granularity: each layer's input only
  kSelective,  // recompute, attention internals dropped
  kChunk,      // recompute, chunk granularity: the chunk's input only
};

// Tensors one unit saves in F when everything is kept, in the order the
// worker stores them. For kLayer: x, rstd1, q, k, v, probs|lse, attn, x2,
// rstd2, gate, up. For kEmbedding: ids. For kHead: xf, rstdf, probs_v,
// targets.
std::vector<StashTensor> ForwardStash(UnitKind kind, const LayoutDims& dims);

// The subset of ForwardStash that F keeps under `mode`. `first_unit` tells
// whether this unit takes the chunk's input (kChunk keeps only that).
std::vector<StashTensor> KeptStash(UnitKind kind, const LayoutDims& dims, SaveMode mode,
                                   bool first_unit);

// Tensors held between BI and BW (inputs of the linear layers and the
// gradients of their outputs). Norm gains get their gradients in BI.
std::vector<StashTensor> WeightGradStash(UnitKind kind, const LayoutDims& dims);

int64_t StashBytes(const std::vector<StashTensor>& tensors, int64_t tokens, int64_t act_bytes);

// Bytes an offload of `fraction` moves: floor(fraction * numel) elements of
// every tensor, summed. The worker moves exactly these prefixes.
int64_t OffloadedBytes(const std::vector<StashTensor>& tensors, int64_t tokens, int64_t act_bytes,
                       double fraction);

// floor(fraction * numel), clamped to [0, numel]; shared by both sides.
int64_t OffloadElements(int64_t numel, double fraction);

}  // namespace chronos

#endif  // CHRONOS_CORE_ACTIVATION_LAYOUT_H_
