// The LLaMA-like job of BENCHMARKS.md (h = 4096, 32 heads, SwiGLU width
// 11008, vocabulary 32000, s = 4096, flash attention, bf16, micro-batch 1)
// on one pipeline, with Chronos-Pipe as the spec's schedule. The benches
// and the tests that check their claims plan the same job.
#ifndef CHRONOS_BENCH_LLAMA_SPEC_H_
#define CHRONOS_BENCH_LLAMA_SPEC_H_

#include "chronos/v1/job.pb.h"

namespace chronos {

inline v1::JobSpec LlamaBenchSpec(int p, int m, int layers) {
  v1::JobSpec spec;
  auto* mo = spec.mutable_model();
  mo->set_layers(layers);
  mo->set_hidden(4096);
  mo->set_heads(32);
  mo->set_ffn_hidden(11008);
  mo->set_vocab(32000);
  mo->set_seq_len(4096);
  mo->set_attention(v1::ATTENTION_FLASH);
  spec.mutable_training()->set_microbatches(m);
  spec.mutable_training()->set_micro_batch_size(1);
  spec.mutable_training()->set_precision(v1::PRECISION_BF16);
  spec.mutable_parallel()->set_pipeline(p);
  spec.mutable_parallel()->set_data(1);
  spec.mutable_schedule()->set_kind("chronos");
  return spec;
}

}  // namespace chronos

#endif  // CHRONOS_BENCH_LLAMA_SPEC_H_
