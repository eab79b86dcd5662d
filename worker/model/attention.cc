#include "worker/model/attention.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <tuple>

namespace chronos::worker {

CausalAttention::CausalAttention(int64_t seq_len, int64_t head_dim, c10::Device device)
    : future_(at::ones({seq_len, seq_len}, at::TensorOptions().dtype(at::kBool).device(device))
                  .triu(1)),
      scale_(1.0 / std::sqrt(static_cast<double>(head_dim))) {}

at::Tensor CausalAttention::Scores(const at::Tensor& q, const at::Tensor& k) const {
  return at::matmul(q, k.transpose(-2, -1))
      .to(at::kFloat)
      .mul(scale_)
      .masked_fill(future_, -std::numeric_limits<float>::infinity());
}

at::Tensor CausalAttention::Probs(const at::Tensor& q, const at::Tensor& k, bool flash,
                                  at::Tensor* probs, at::Tensor* lse) const {
  at::Tensor scores = Scores(q, k);
  if (flash) {
    *lse = at::logsumexp(scores, -1);
    *probs = at::Tensor();
    // The same expression SavedProbs evaluates, so F and B agree bit for bit.
    return scores.sub(lse->unsqueeze(-1)).exp();
  }
  at::Tensor p = at::softmax(scores, -1);
  *probs = p.to(q.scalar_type());
  *lse = at::Tensor();
  return p;
}

at::Tensor CausalAttention::SavedProbs(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& probs, const at::Tensor& lse) const {
  if (probs.defined()) return probs.to(at::kFloat);
  return Scores(q, k).sub(lse.unsqueeze(-1)).exp();
}

at::Tensor CausalAttention::Output(const at::Tensor& probs32, const at::Tensor& v) const {
  at::Tensor o = at::matmul(probs32.to(v.scalar_type()), v);  // [b,nh,s,hd]
  return o.transpose(1, 2).reshape({o.size(0), o.size(2), -1});
}

CausalAttention::Grads CausalAttention::Backward(const at::Tensor& q, const at::Tensor& k,
                                                 const at::Tensor& v, const at::Tensor& probs32,
                                                 const at::Tensor& dattn) const {
  const int64_t b = q.size(0), nh = q.size(1), s = q.size(2), hd = q.size(3);
  at::Tensor dout = dattn.reshape({b, s, nh, hd}).transpose(1, 2);
  at::Tensor p = probs32.to(v.scalar_type());
  Grads g;
  g.dv = at::matmul(p.transpose(-2, -1), dout);
  at::Tensor dp = at::matmul(dout, v.transpose(-2, -1)).to(at::kFloat);
  // Softmax backward; masked entries have p == 0 and get no gradient.
  at::Tensor ds = probs32.mul(dp.sub(dp.mul(probs32).sum(-1, /*keepdim=*/true)));
  ds = ds.mul(scale_).to(q.scalar_type());
  g.dq = at::matmul(ds, k);
  g.dk = at::matmul(ds.transpose(-2, -1), q);
  return g;
}

namespace {

// [b, s, heads * hd] -> [b, heads, s, hd], contiguous.
at::Tensor SplitMerged(const at::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2).contiguous();
}

at::Tensor Merge(const at::Tensor& o) {
  return o.transpose(1, 2).reshape({o.size(0), o.size(2), -1});
}

}  // namespace

bool CausalAttention::HasFusedFlash(const at::Tensor& q) {
  if (q.is_cpu()) return at::isFloatingType(q.scalar_type());
  if (q.is_cuda()) {
    return q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  }
  return false;
}

at::Tensor CausalAttention::FusedFlash(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, at::Tensor* lse) const {
  at::Tensor out;
  if (q.is_cpu()) {
    std::tie(out, *lse) = at::_scaled_dot_product_flash_attention_for_cpu(
        q, k, v, /*dropout_p=*/0.0, /*is_causal=*/true, /*attn_mask=*/{}, scale_);
  } else {
    auto r = at::_scaled_dot_product_flash_attention(q, k, v, /*dropout_p=*/0.0, /*is_causal=*/true,
                                                     /*return_debug_mask=*/false, scale_);
    out = std::get<0>(r);
    *lse = std::get<1>(r);
  }
  return Merge(out);
}

CausalAttention::Grads CausalAttention::FusedFlashBackward(const at::Tensor& q, const at::Tensor& k,
                                                           const at::Tensor& v,
                                                           const at::Tensor& attn,
                                                           const at::Tensor& lse,
                                                           const at::Tensor& dattn) const {
  const int64_t heads = q.size(1);
  const at::Tensor out = SplitMerged(attn, heads);
  const at::Tensor dout = SplitMerged(dattn.to(q.scalar_type()), heads);
  std::tuple<at::Tensor, at::Tensor, at::Tensor> g;
  if (q.is_cpu()) {
    g = at::_scaled_dot_product_flash_attention_for_cpu_backward(
        dout, q, k, v, out, lse, /*dropout_p=*/0.0, /*is_causal=*/true,
        /*attn_mask=*/{}, scale_);
  } else {
    // No dropout: the sequence bounds and the random-state tensors are
    // unused; the maximum lengths are the (fixed) sequence length.
    const int64_t s = q.size(2);
    g = at::_scaled_dot_product_flash_attention_backward(
        dout, q, k, v, out, lse, /*cum_seq_q=*/at::Tensor(),
        /*cum_seq_k=*/at::Tensor(), s, s, /*dropout_p=*/0.0,
        /*is_causal=*/true, /*philox_seed=*/at::Tensor(),
        /*philox_offset=*/at::Tensor(), scale_);
  }
  return Grads{std::get<0>(g), std::get<1>(g), std::get<2>(g)};
}

}  // namespace chronos::worker
