#include "core/activation_layout.h"

#include <algorithm>
#include <cmath>

namespace chronos {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

std::vector<StashTensor> Without(const std::vector<StashTensor>& all,
                                 const std::vector<std::string>& drop) {
  std::vector<StashTensor> out;
  for (const StashTensor& t : all) {
    if (!Contains(drop, t.name)) out.push_back(t);
  }
  return out;
}

std::vector<StashTensor> Only(const std::vector<StashTensor>& all,
                              const std::vector<std::string>& keep) {
  std::vector<StashTensor> out;
  for (const StashTensor& t : all) {
    if (Contains(keep, t.name)) out.push_back(t);
  }
  return out;
}

}  // namespace

int64_t StashDtypeBytes(StashDtype dtype, int64_t act_bytes) {
  switch (dtype) {
    case StashDtype::kAct:
      return act_bytes;
    case StashDtype::kF32:
      return 4;
    case StashDtype::kI64:
      return 8;
  }
  return 0;
}

std::vector<StashTensor> ForwardStash(UnitKind kind, const LayoutDims& d) {
  switch (kind) {
    case UnitKind::kEmbedding:
      return {{"ids", StashDtype::kI64, 1}};
    case UnitKind::kLayer: {
      std::vector<StashTensor> t = {
          {"x", StashDtype::kAct, d.hidden}, {"rstd1", StashDtype::kF32, 1},
          {"q", StashDtype::kAct, d.hidden}, {"k", StashDtype::kAct, d.hidden},
          {"v", StashDtype::kAct, d.hidden},
      };
      if (d.flash) {
        t.push_back({"lse", StashDtype::kF32, d.heads});
      } else {
        t.push_back({"probs", StashDtype::kAct, d.heads * d.seq_len});
      }
      t.push_back({"attn", StashDtype::kAct, d.hidden});
      t.push_back({"x2", StashDtype::kAct, d.hidden});
      t.push_back({"rstd2", StashDtype::kF32, 1});
      t.push_back({"gate", StashDtype::kAct, d.ffn});
      t.push_back({"up", StashDtype::kAct, d.ffn});
      return t;
    }
    case UnitKind::kHead:
      return {{"xf", StashDtype::kAct, d.hidden},
              {"rstdf", StashDtype::kF32, 1},
              {"probs_v", StashDtype::kF32, d.vocab},
              {"targets", StashDtype::kI64, 1}};
  }
  return {};
}

std::vector<StashTensor> KeptStash(UnitKind kind, const LayoutDims& dims, SaveMode mode,
                                   bool first_unit) {
  std::vector<StashTensor> all = ForwardStash(kind, dims);
  switch (mode) {
    case SaveMode::kAll:
      return all;
    case SaveMode::kLayer:
      if (kind == UnitKind::kLayer) return Only(all, {"x"});
      if (kind == UnitKind::kHead) return Only(all, {"xf", "targets"});
      return all;  // embedding: the token ids are the chunk's input
    case SaveMode::kSelective:
      if (kind == UnitKind::kLayer) {
        return Without(all, {"q", "k", "v", "probs", "lse"});
      }
      return all;
    case SaveMode::kChunk:
      if (kind == UnitKind::kEmbedding) return all;
      if (kind == UnitKind::kLayer) {
        return first_unit ? Only(all, {"x"}) : std::vector<StashTensor>{};
      }
      // The loss needs its targets; they are tiny, so the head always keeps
      // them rather than re-reading the data.
      return first_unit ? Only(all, {"xf", "targets"}) : Only(all, {"targets"});
  }
  return all;
}

std::vector<StashTensor> WeightGradStash(UnitKind kind, const LayoutDims& d) {
  switch (kind) {
    case UnitKind::kEmbedding:
      return {{"ids", StashDtype::kI64, 1}, {"demb", StashDtype::kAct, d.hidden}};
    case UnitKind::kLayer:
      return {{"xn1", StashDtype::kAct, d.hidden},  {"dqkv", StashDtype::kAct, 3 * d.hidden},
              {"attn", StashDtype::kAct, d.hidden}, {"do", StashDtype::kAct, d.hidden},
              {"xn2", StashDtype::kAct, d.hidden},  {"dgate", StashDtype::kAct, d.ffn},
              {"dup", StashDtype::kAct, d.ffn},     {"act", StashDtype::kAct, d.ffn},
              {"dmlp", StashDtype::kAct, d.hidden}};
    case UnitKind::kHead:
      return {{"xnf", StashDtype::kAct, d.hidden}, {"dlogits", StashDtype::kAct, d.vocab}};
  }
  return {};
}

int64_t StashBytes(const std::vector<StashTensor>& tensors, int64_t tokens, int64_t act_bytes) {
  int64_t total = 0;
  for (const StashTensor& t : tensors) {
    total += t.elements_per_token * tokens * StashDtypeBytes(t.dtype, act_bytes);
  }
  return total;
}

int64_t OffloadElements(int64_t numel, double fraction) {
  if (fraction <= 0) return 0;
  if (fraction >= 1) return numel;
  // The small epsilon keeps 0.5 * 10 at 5 whatever the rounding of 0.5.
  int64_t n = static_cast<int64_t>(std::floor(fraction * static_cast<double>(numel) + 1e-9));
  return std::clamp<int64_t>(n, 0, numel);
}

int64_t OffloadedBytes(const std::vector<StashTensor>& tensors, int64_t tokens, int64_t act_bytes,
                       double fraction) {
  int64_t total = 0;
  for (const StashTensor& t : tensors) {
    total += OffloadElements(t.elements_per_token * tokens, fraction) *
             StashDtypeBytes(t.dtype, act_bytes);
  }
  return total;
}

}  // namespace chronos
