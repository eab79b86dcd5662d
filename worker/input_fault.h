// Faults that another attempt would meet again, so the coordinator fails
// the job instead of restarting or re-planning it.
//
// Input: a fault of the job's training data: a corpus that is missing, unreadable
// or unusable (shorter than one window, tokens >= vocab, a shard with a bad
// header). The mark travels as a status payload, whatever the code, so the
// daemon reports FAULT_INPUT and the coordinator fails the job at once
// instead of restarting it into the same error. (A damaged checkpoint is
// FAULT_DATA: another attempt, on other workers or from another replica's
// files, may not need it.) Torch-free.
#ifndef CHRONOS_WORKER_INPUT_FAULT_H_
#define CHRONOS_WORKER_INPUT_FAULT_H_

#include "absl/status/status.h"

namespace chronos::worker {

// `s` with the mark (an OK status stays OK).
absl::Status AsInputFault(absl::Status s);
bool IsInputFault(const absl::Status& s);

// Storage: a checkpoint could not be written because the disk or quota of
// training.checkpoint_dir is full (FAULT_STORAGE; not out of memory).
absl::Status AsStorageFault(absl::Status s);
bool IsStorageFault(const absl::Status& s);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_INPUT_FAULT_H_
