#include "tests/worker/reference_run.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "worker/data/token_source.h"
#include "worker/model/model_dims_from_spec.h"

namespace chronos::worker::testing {

Reference RunReference(const v1::JobSpec& spec, const TinyJob& job) {
  const ModelDims dims = ModelDimsFromSpec(spec, /*flash=*/false);
  reference::ReferenceGpt model(dims, job.seed);
  reference::RefTrainOptions o;
  o.lr = job.lr;
  o.min_lr = job.min_lr;
  o.warmup_iterations = job.warmup;
  o.total_iterations = job.iterations;
  o.weight_decay = job.weight_decay;
  o.grad_clip = job.grad_clip;
  reference::RefAdamW adam(o);
  auto tokens = TokenSource::Open(job.data_path, TokenFormat::kText, job.vocab, job.seq_len);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  Reference ref;
  for (int it = 1; it <= job.iterations; ++it) {
    // Every replica's micro-batches: one step over the doubled batch.
    std::vector<at::Tensor> ids, targets;
    for (int r = 0; r < job.data; ++r) {
      for (int mb = 0; mb < job.microbatches; ++mb) {
        Batch b = (*tokens)->Get(it, r, job.data, mb, job.microbatches, job.micro_batch,
                                 job.seq_len, job.seed);
        ids.push_back(b.inputs);
        targets.push_back(b.targets);
      }
    }
    reference::ReferenceGpt::LossAndGrads lg = model.Compute(ids, targets);
    ref.losses.push_back(lg.loss);
    if (it == 1) ref.first_grads = lg.grads;
    adam.Step(it, &model.params(), lg.grads);
  }
  return ref;
}

}  // namespace chronos::worker::testing
