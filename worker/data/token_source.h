// Training data: a plain text file (byte-level tokens, vocab 256) or llm.c
// token shards (256 int32 header; magic 20240520 with uint16 tokens, or
// 20240801 with uint32). Samples are windows of seq_len + 1 tokens; their
// order is a deterministic shuffle from the seed, and each data-parallel rank
// reads its own slice. Position is a pure function of (iteration, rank,
// micro-batch), so a restored job reads exactly what it would have read.
//
// Sampling: with N tokens there are W = (N - 1) / seq_len windows; window w
// is tokens [w*seq_len, w*seq_len + seq_len] (inputs never overlap). Global
// sample index g = (((iteration-1)*data_parallel + data_rank)*microbatches +
// mb)*micro_batch_size + row reads window perm_e[g % W] of epoch e = g / W,
// where perm_e is a Fisher-Yates shuffle driven by std::mt19937_64 seeded
// from (seed, e). Get is thread-safe (the per-epoch permutation is cached
// under a lock).
#ifndef CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_
#define CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace chronos::worker {

enum class TokenFormat { kText, kLlmc };

struct Batch {
  at::Tensor inputs;   // int64 [b, s]
  at::Tensor targets;  // int64 [b, s], inputs shifted by one
};

class TokenSource {
 public:
  // `path` may be a file or (llmc) a directory (its *.bin files, sorted) or a
  // glob of shards, concatenated in order. Fails with kInvalidArgument
  // naming the file on bad magic or version, sizes that disagree with the
  // header, tokens >= vocab, text with vocab < 256, or fewer tokens than
  // seq_len + 1 (checked when seq_len > 0); kNotFound when nothing matches.
  static absl::StatusOr<std::unique_ptr<TokenSource>> Open(const std::string& path,
                                                           TokenFormat format, int64_t vocab,
                                                           int64_t seq_len = 0);

  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }

  // Number of windows W for `seq_len`.
  int64_t num_windows(int64_t seq_len) const {
    return seq_len > 0 ? (num_tokens() - 1) / seq_len : 0;
  }

  // Micro-batch `mb` (of `microbatches`) of 1-based `iteration` for
  // data-parallel rank `data_rank` of `data_parallel`. Arguments out of range
  // (or W == 0) are programming errors: c10::Error, like other ATen misuse.
  Batch Get(int64_t iteration, int data_rank, int data_parallel, int mb, int microbatches,
            int64_t micro_batch_size, int64_t seq_len, uint64_t seed) const;

 private:
  struct Permutation;  // one epoch's window order
  std::shared_ptr<const Permutation> EpochOrder(uint64_t seed, int64_t windows,
                                                int64_t epoch) const;

  std::vector<int32_t> tokens_;
  // A few recent epochs: a micro-batch spans at most two unless W is tiny.
  mutable absl::Mutex mu_;
  mutable std::vector<std::shared_ptr<const Permutation>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DATA_TOKEN_SOURCE_H_
