// Per-stage checkpoints: weights (fp32 masters), optimizer moments and step,
// data position (iteration) and RNG seed, written atomically (temp file,
// fsync, rename, fsync dir). Layout: <dir>/iter-<N>/stage-<device>-dp<rank>.ckpt
// plus <dir>/iter-<N>/COMPLETE written by whoever sees all stages done.
// A checkpoint is tied to the partition (chunk layers), not to the workers:
// any set of workers with the same partition restores its own files, and a
// different partition (a job re-planned onto fewer stages) gathers its
// parameters and moments by name from every old stage file.
#ifndef CHRONOS_WORKER_CHECKPOINT_H_
#define CHRONOS_WORKER_CHECKPOINT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chronos::worker {

struct StageCheckpoint {
  int64_t iteration = 0;
  int device = 0;
  int data_rank = 0;
  uint64_t seed = 0;
  int64_t optimizer_step = 0;
  std::vector<int> chunk_layers;             // partition it belongs to
  std::map<std::string, at::Tensor> params;  // name -> fp32 master (CPU)
  std::vector<at::Tensor> optimizer_state;   // AdamW::StateTensors order
  // Parameter names in optimizer_state's order (two tensors per name), so
  // another partition can match moments by name. Empty in version-1 files.
  std::vector<std::string> param_order;
};

std::string StageCheckpointPath(const std::string& dir, int64_t iteration, int device,
                                int data_rank);
absl::Status WriteStageCheckpoint(const std::string& dir, const StageCheckpoint& ckpt);
absl::StatusOr<StageCheckpoint> ReadStageCheckpoint(const std::string& dir, int64_t iteration,
                                                    int device, int data_rank);
// Latest iteration under `dir` for which every (device, data_rank) file of a
// p x d job exists; 0 if none.
int64_t LatestCompleteCheckpoint(const std::string& dir, int num_devices, int data_parallel);

// Keeps this stage's `keep` newest checkpoints under `dir` and removes its
// older files, its orphan "*.tmp.<pid>" files (a writer killed mid-write)
// and iteration directories left empty. Only this (device, data_rank)'s
// files are touched: the other stages prune their own. A stage is never
// more than one checkpoint ahead of another, so the newest complete
// checkpoint survives any keep >= 2. Best effort: a file that cannot be
// removed is left.
void PruneStageCheckpoints(const std::string& dir, int device, int data_rank, int keep);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_CHECKPOINT_H_
