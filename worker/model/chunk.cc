#include "worker/model/chunk.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "worker/model/embedding.h"
#include "worker/model/lm_head.h"
#include "worker/model/transformer_layer.h"

namespace chronos::worker {
namespace {

// A layer's parameters, in the order params() lists them.
struct LayerParams {
  Param* g1;
  Param* wqkv;
  Param* wo;
  Param* g2;
  Param* w_gate;
  Param* w_up;
  Param* w_down;

  LayerWeights Values() const {
    return {wqkv->value,   wo->value, w_gate->value, w_up->value,
            w_down->value, g1->value, g2->value};
  }
};

void Accumulate(Param* p, const at::Tensor& g) { p->grad.add_(g.to(at::kFloat)); }

// The name of the tensor through which unit 0 of a chunk takes its input.
std::string InputName(UnitKind kind) {
  switch (kind) {
    case UnitKind::kEmbedding:
      return "ids";
    case UnitKind::kLayer:
      return "x";
    case UnitKind::kHead:
      return "xf";
  }
  return "";
}

// The embedding's weight-gradient inputs: the token ids and the gradient of
// its output.
struct EmbeddingWGradInputs {
  at::Tensor ids;
  at::Tensor demb;
  at::Tensor* Field(const std::string& name) {
    if (name == "ids") return &ids;
    TORCH_CHECK(name == "demb", "unknown stash tensor name '", name, "'");
    return &demb;
  }
};

}  // namespace

void Param::SyncValue() {
  if (!value.is_same(master)) value.copy_(master);
}

struct Chunk::Impl {
  Impl(const ModelDims& d, const ChunkSpec& s, uint64_t seed, c10::TensorOptions options);

  Param* AddParam(uint64_t seed, int layer, const std::string& name, std::vector<int64_t> shape,
                  double std, bool decay);
  UnitKind Kind(int unit) const;
  const LayerParams& Layer(int unit) const { return layers[unit - (spec.has_embedding ? 1 : 0)]; }

  // Runs F over every unit, storing what KeptStash(mode) lists. With
  // `only_missing`, entries already in the stash are left alone (a chunk
  // recompute keeps the input and targets it started from).
  at::Tensor RunForward(int mb, const at::Tensor& input, const at::Tensor& targets, SaveMode mode,
                        bool only_missing, ActivationStash* stash);
  // B (split = false) or BI (split = true).
  at::Tensor RunBackward(int mb, const at::Tensor& grad_output, double loss_scale, bool split,
                         ActivationStash* stash);

  // Loads the unit's forward tensors into *saved, rebuilds the missing ones
  // with `rebuild` and stores those (the stash's "Put(rebuilt)" step).
  template <typename Saved, typename Rebuild>
  void LoadOrRebuild(int mb, int unit, ActivationStash* stash, Saved* saved, Rebuild rebuild);
  void EraseForward(int mb, int unit, ActivationStash* stash) const;
  // Accumulates the weight gradients a unit's W-stash implies (B and BW).
  void ApplyWeightGrads(int unit, const HeadWGradInputs& wg);
  void ApplyWeightGrads(int unit, const LayerWGradInputs& wg);
  void ApplyWeightGrads(int unit, const EmbeddingWGradInputs& wg);
  template <typename WGrad>
  void PutWeightGradStash(int mb, int unit, WGrad* wg, ActivationStash* stash) const;
  template <typename WGrad>
  void TakeWeightGradStash(int mb, int unit, WGrad* wg, ActivationStash* stash) const;

  ModelDims dims;
  ChunkSpec spec;
  LayoutDims layout;
  c10::Device device;
  at::ScalarType dtype;
  std::vector<std::unique_ptr<Param>> params;
  Param* wte = nullptr;
  std::vector<LayerParams> layers;
  Param* gf = nullptr;
  Param* head_w = nullptr;
  TransformerLayer layer_math;
  LmHead head_math;
  int num_units = 0;
  // F's mode per micro-batch in flight: RECOMPUTE acts only on kChunk.
  std::map<int, SaveMode> modes;
};

Chunk::Impl::Impl(const ModelDims& d, const ChunkSpec& s, uint64_t seed, c10::TensorOptions options)
    : dims(d),
      spec(s),
      layout(d.layout()),
      device(options.device()),
      dtype(options.dtype().toScalarType()),
      layer_math(d, options.device()),
      head_math(d.norm_eps) {
  const int64_t h = d.hidden, f = d.ffn, v = d.vocab;
  const double std = d.init_std;
  // Output projections feeding the residual stream are scaled down by
  // sqrt(2 * layers) (GPT-2) so the stream's variance does not grow with depth.
  const double out_std = d.init_std / std::sqrt(2.0 * std::max<int64_t>(1, d.layers));
  if (s.has_embedding) {
    wte = AddParam(seed, -1, "embedding.wte", {v, h}, std, true);
  }
  for (int i = 0; i < s.num_layers; ++i) {
    const int l = s.first_layer + i;
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerParams lp;
    lp.g1 = AddParam(seed, l, p + "g1", {h}, 0, false);
    lp.wqkv = AddParam(seed, l, p + "wqkv", {3 * h, h}, std, true);
    lp.wo = AddParam(seed, l, p + "wo", {h, h}, out_std, true);
    lp.g2 = AddParam(seed, l, p + "g2", {h}, 0, false);
    lp.w_gate = AddParam(seed, l, p + "w_gate", {f, h}, std, true);
    lp.w_up = AddParam(seed, l, p + "w_up", {f, h}, std, true);
    lp.w_down = AddParam(seed, l, p + "w_down", {h, f}, out_std, true);
    layers.push_back(lp);
  }
  if (s.has_head) {
    gf = AddParam(seed, -2, "head.gf", {h}, 0, false);
    head_w = AddParam(seed, -2, "head.w", {v, h}, std, true);
  }
  num_units = (s.has_embedding ? 1 : 0) + s.num_layers + (s.has_head ? 1 : 0);
}

Param* Chunk::Impl::AddParam(uint64_t seed, int layer, const std::string& name,
                             std::vector<int64_t> shape, double std, bool decay) {
  auto p = std::make_unique<Param>();
  p->name = name;
  p->master = InitialParameter(seed, layer, name, shape, std).to(device);
  p->value = dtype == at::kFloat ? p->master : p->master.to(dtype);
  p->grad = at::zeros_like(p->master);
  p->weight_decay = decay;
  params.push_back(std::move(p));
  return params.back().get();
}

UnitKind Chunk::Impl::Kind(int unit) const {
  TORCH_CHECK(unit >= 0 && unit < num_units, "unit ", unit, " out of range");
  if (spec.has_embedding && unit == 0) return UnitKind::kEmbedding;
  if (spec.has_head && unit == num_units - 1) return UnitKind::kHead;
  return UnitKind::kLayer;
}

at::Tensor Chunk::Impl::RunForward(int mb, const at::Tensor& input, const at::Tensor& targets,
                                   SaveMode mode, bool only_missing, ActivationStash* stash) {
  at::Tensor h = input;
  for (int u = 0; u < num_units; ++u) {
    const UnitKind kind = Kind(u);
    auto save = [&](const std::string& name, const at::Tensor& t) {
      if (only_missing && stash->Has(mb, spec.index, u, name)) return;
      stash->Put(mb, spec.index, u, name, t);
    };
    const std::vector<StashTensor> kept = KeptStash(kind, layout, mode, /*first_unit=*/u == 0);
    switch (kind) {
      case UnitKind::kEmbedding: {
        at::Tensor ids = h;
        h = EmbeddingForward(wte->value, ids);
        for (const StashTensor& t : kept) save(t.name, ids);
        break;
      }
      case UnitKind::kLayer: {
        TORCH_CHECK(h.scalar_type() == dtype && h.dim() == 3 && h.size(1) == dims.seq_len &&
                        h.size(2) == dims.hidden,
                    "layer input must be [b, ", dims.seq_len, ", ", dims.hidden,
                    "] in the compute dtype");
        const LayerParams& lp = Layer(u);
        LayerSaved s;
        s.x = h;
        layer_math.Rebuild(lp.Values(), &s);
        h = layer_math.Output(lp.Values(), s);
        for (const StashTensor& t : kept) save(t.name, *s.Field(t.name));
        break;
      }
      case UnitKind::kHead: {
        TORCH_CHECK(targets.defined() && targets.scalar_type() == at::kLong,
                    "the last chunk needs int64 targets");
        HeadSaved s;
        s.xf = h;
        s.targets = targets;
        h = head_math.Rebuild(gf->value, head_w->value, &s);
        for (const StashTensor& t : kept) save(t.name, *s.Field(t.name));
        break;
      }
    }
  }
  return h;
}

template <typename Saved, typename Rebuild>
void Chunk::Impl::LoadOrRebuild(int mb, int unit, ActivationStash* stash, Saved* saved,
                                Rebuild rebuild) {
  std::vector<std::string> missing;
  for (const StashTensor& t : ForwardStash(Kind(unit), layout)) {
    if (stash->Has(mb, spec.index, unit, t.name)) {
      *saved->Field(t.name) = stash->Get(mb, spec.index, unit, t.name);
    } else {
      missing.push_back(t.name);
    }
  }
  if (missing.empty()) return;
  rebuild(saved);
  for (const std::string& name : missing) {
    stash->Put(mb, spec.index, unit, name, *saved->Field(name));
  }
}

void Chunk::Impl::EraseForward(int mb, int unit, ActivationStash* stash) const {
  for (const StashTensor& t : ForwardStash(Kind(unit), layout)) {
    stash->Erase(mb, spec.index, unit, t.name);
  }
}

void Chunk::Impl::ApplyWeightGrads(int unit, const HeadWGradInputs& wg) {
  Accumulate(head_w, head_math.BackwardWeight(wg));
}

void Chunk::Impl::ApplyWeightGrads(int unit, const LayerWGradInputs& wg) {
  const LayerParams& lp = Layer(unit);
  LayerWeightGrads g = layer_math.BackwardWeight(wg);
  Accumulate(lp.wqkv, g.wqkv);
  Accumulate(lp.wo, g.wo);
  Accumulate(lp.w_gate, g.w_gate);
  Accumulate(lp.w_up, g.w_up);
  Accumulate(lp.w_down, g.w_down);
}

void Chunk::Impl::ApplyWeightGrads(int unit, const EmbeddingWGradInputs& wg) {
  AccumulateEmbeddingGrad(wg.ids, wg.demb, &wte->grad);
}

template <typename WGrad>
void Chunk::Impl::PutWeightGradStash(int mb, int unit, WGrad* wg, ActivationStash* stash) const {
  for (const StashTensor& t : WeightGradStash(Kind(unit), layout)) {
    stash->Put(mb, spec.index, unit, t.name, *wg->Field(t.name));
  }
}

template <typename WGrad>
void Chunk::Impl::TakeWeightGradStash(int mb, int unit, WGrad* wg, ActivationStash* stash) const {
  for (const StashTensor& t : WeightGradStash(Kind(unit), layout)) {
    *wg->Field(t.name) = stash->Get(mb, spec.index, unit, t.name);
    stash->Erase(mb, spec.index, unit, t.name);
  }
}

at::Tensor Chunk::Impl::RunBackward(int mb, const at::Tensor& grad_output, double loss_scale,
                                    bool split, ActivationStash* stash) {
  at::Tensor g = grad_output;
  TORCH_CHECK(spec.has_head != g.defined(), spec.has_head
                                                ? "the last chunk's backward starts from its loss"
                                                : "backward needs the output gradient");
  for (int u = num_units - 1; u >= 0; --u) {
    switch (Kind(u)) {
      case UnitKind::kHead: {
        HeadSaved s;
        LoadOrRebuild(mb, u, stash, &s,
                      [&](HeadSaved* hs) { head_math.Rebuild(gf->value, head_w->value, hs); });
        HeadWGradInputs wg;
        at::Tensor dgf;
        g = head_math.BackwardInput(gf->value, head_w->value, s, loss_scale, &wg, &dgf);
        Accumulate(gf, dgf);
        EraseForward(mb, u, stash);
        if (split) {
          PutWeightGradStash(mb, u, &wg, stash);
        } else {
          ApplyWeightGrads(u, wg);
        }
        break;
      }
      case UnitKind::kLayer: {
        const LayerParams& lp = Layer(u);
        const LayerWeights w = lp.Values();
        LayerSaved s;
        LoadOrRebuild(mb, u, stash, &s, [&](LayerSaved* ls) { layer_math.Rebuild(w, ls); });
        LayerWGradInputs wg;
        at::Tensor dg1, dg2;
        g = layer_math.BackwardInput(w, s, g, &wg, &dg1, &dg2);
        Accumulate(lp.g1, dg1);
        Accumulate(lp.g2, dg2);
        EraseForward(mb, u, stash);
        if (split) {
          PutWeightGradStash(mb, u, &wg, stash);
        } else {
          ApplyWeightGrads(u, wg);
        }
        break;
      }
      case UnitKind::kEmbedding: {
        EmbeddingWGradInputs wg;
        wg.ids = stash->Get(mb, spec.index, u, "ids");
        wg.demb = g;
        EraseForward(mb, u, stash);
        if (split) {
          PutWeightGradStash(mb, u, &wg, stash);
        } else {
          ApplyWeightGrads(u, wg);
        }
        g = at::Tensor();  // token ids have no gradient
        break;
      }
    }
  }
  modes.erase(mb);
  return g;
}

Chunk::Chunk(const ModelDims& dims, const ChunkSpec& spec, uint64_t seed,
             c10::TensorOptions options)
    : dims_(dims), spec_(spec), impl_(std::make_unique<Impl>(dims, spec, seed, options)) {}

Chunk::~Chunk() = default;

int Chunk::num_units() const { return impl_->num_units; }

UnitKind Chunk::unit_kind(int unit) const { return impl_->Kind(unit); }

std::vector<Param*> Chunk::params() {
  std::vector<Param*> out;
  for (const auto& p : impl_->params) out.push_back(p.get());
  return out;
}

at::Tensor Chunk::Forward(int mb, const at::Tensor& input, const at::Tensor& targets, SaveMode mode,
                          ActivationStash* stash) {
  c10::NoGradGuard no_grad;
  impl_->modes[mb] = mode;
  return impl_->RunForward(mb, input, targets, mode, /*only_missing=*/false, stash);
}

void Chunk::Recompute(int mb, ActivationStash* stash) {
  c10::NoGradGuard no_grad;
  auto it = impl_->modes.find(mb);
  // Layer and selective granularity rebuild lazily inside the backward.
  if (it == impl_->modes.end() || it->second != SaveMode::kChunk) return;
  const int last = impl_->num_units - 1;
  at::Tensor input = stash->Get(mb, spec_.index, 0, InputName(impl_->Kind(0)));
  at::Tensor targets = spec_.has_head ? stash->Get(mb, spec_.index, last, "targets") : at::Tensor();
  impl_->RunForward(mb, input, targets, SaveMode::kAll, /*only_missing=*/true, stash);
}

at::Tensor Chunk::Backward(int mb, const at::Tensor& grad_output, double loss_scale,
                           ActivationStash* stash) {
  c10::NoGradGuard no_grad;
  return impl_->RunBackward(mb, grad_output, loss_scale, /*split=*/false, stash);
}

at::Tensor Chunk::BackwardInput(int mb, const at::Tensor& grad_output, double loss_scale,
                                ActivationStash* stash) {
  c10::NoGradGuard no_grad;
  return impl_->RunBackward(mb, grad_output, loss_scale, /*split=*/true, stash);
}

void Chunk::BackwardWeight(int mb, ActivationStash* stash) {
  c10::NoGradGuard no_grad;
  Impl& m = *impl_;
  for (int u = m.num_units - 1; u >= 0; --u) {
    switch (m.Kind(u)) {
      case UnitKind::kHead: {
        HeadWGradInputs wg;
        m.TakeWeightGradStash(mb, u, &wg, stash);
        m.ApplyWeightGrads(u, wg);
        break;
      }
      case UnitKind::kLayer: {
        LayerWGradInputs wg;
        m.TakeWeightGradStash(mb, u, &wg, stash);
        m.ApplyWeightGrads(u, wg);
        break;
      }
      case UnitKind::kEmbedding: {
        EmbeddingWGradInputs wg;
        m.TakeWeightGradStash(mb, u, &wg, stash);
        m.ApplyWeightGrads(u, wg);
        break;
      }
    }
  }
}

}  // namespace chronos::worker
