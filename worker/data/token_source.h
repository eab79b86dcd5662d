// Training data: a plain text file (byte-level tokens, vocab 256) or llm.c
// token shards (256 int32 header; magic 20240520 with uint16 tokens, or
// 20240801 with uint32). Samples are windows of seq_len + 1 tokens; their
// order is a deterministic shuffle from the seed, and each data-parallel rank
// reads its own slice. Position is a pure function of (iteration, rank,
// micro-batch), so a restored job reads exactly what it would have read.
#ifndef CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_
#define CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chronos::worker {

enum class TokenFormat { kText, kLlmc };

struct Batch {
  at::Tensor inputs;   // int64 [b, s]
  at::Tensor targets;  // int64 [b, s], inputs shifted by one
};

class TokenSource {
 public:
  // `path` may be a file or (llmc) a directory / glob of shards. Fails with
  // kInvalidArgument naming the path on bad magic, short files, tokens >=
  // vocab, or fewer tokens than seq_len + 1.
  static absl::StatusOr<std::unique_ptr<TokenSource>> Open(
      const std::string& path, TokenFormat format, int64_t vocab);

  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }

  // Micro-batch `mb` (of `microbatches`) of 1-based `iteration` for
  // data-parallel rank `data_rank` of `data_parallel`.
  Batch Get(int64_t iteration, int data_rank, int data_parallel, int mb,
            int microbatches, int64_t micro_batch_size, int64_t seq_len,
            uint64_t seed) const;

 private:
  std::vector<int32_t> tokens_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_
