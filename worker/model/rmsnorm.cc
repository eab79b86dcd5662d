#include "worker/model/rmsnorm.h"

#include <ATen/ATen.h>

namespace chronos::worker {

at::Tensor RmsNormRstd(const at::Tensor& x, double eps) {
  at::Tensor x32 = x.to(at::kFloat);
  return at::rsqrt(x32.mul(x32).mean(-1, /*keepdim=*/true).add(eps));
}

at::Tensor RmsNormApply(const at::Tensor& x, const at::Tensor& rstd, const at::Tensor& g) {
  return x.to(at::kFloat).mul(rstd).mul(g.to(at::kFloat)).to(x.scalar_type());
}

RmsNormGrads RmsNormBackward(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& rstd,
                             const at::Tensor& g) {
  const int64_t h = x.size(-1);
  at::Tensor dy32 = dy.to(at::kFloat);
  at::Tensor nhat = x.to(at::kFloat).mul(rstd);
  RmsNormGrads out;
  out.dg = dy32.mul(nhat).reshape({-1, h}).sum(0);
  // d/dx of x*rstd: rstd * (dn - nhat * mean(dn * nhat)), where dn = dy * g;
  // the second term is rstd's own dependence on x.
  at::Tensor dn = dy32.mul(g.to(at::kFloat));
  out.dx = dn.sub(nhat.mul(dn.mul(nhat).mean(-1, /*keepdim=*/true))).mul(rstd);
  return out;
}

}  // namespace chronos::worker
