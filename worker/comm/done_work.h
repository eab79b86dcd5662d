// A Work that finished before it was returned: loopback transfers and
// operations rejected up front (bad peer, non-contiguous tensor).
#ifndef CHRONOS_WORKER_COMM_DONE_WORK_H_
#define CHRONOS_WORKER_COMM_DONE_WORK_H_

#include <utility>

#include "worker/comm/communicator.h"

namespace chronos::worker {

class DoneWork : public Work {
 public:
  explicit DoneWork(absl::Status status = absl::OkStatus()) : status_(std::move(status)) {}
  bool IsCompleted() override { return true; }
  absl::Status Wait(absl::Duration) override { return status_; }

 private:
  absl::Status status_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_COMM_DONE_WORK_H_
