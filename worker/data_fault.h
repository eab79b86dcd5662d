// A fault of the job's data: a corpus or checkpoint that is missing,
// unreadable or unusable (too short for one window, tokens >= vocab, a bad
// shard header). The mark travels as a status payload, whatever the code, so
// the daemon reports FAULT_DATA and the coordinator fails the job at once
// instead of restarting it into the same error. Torch-free.
#ifndef CHRONOS_WORKER_DATA_FAULT_H_
#define CHRONOS_WORKER_DATA_FAULT_H_

#include "absl/status/status.h"

namespace chronos::worker {

// `s` with the mark (an OK status stays OK).
absl::Status AsDataFault(absl::Status s);
bool IsDataFault(const absl::Status& s);

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DATA_FAULT_H_
