// A HostCopier whose copies finish later, on another thread, the way a GPU's
// copy streams do: destinations start as garbage (NaN, or -1 for integers)
// and are written only when the copy runs. Two moments are kept apart, as on
// a GPU: the data landing (what OrderCompute waits for, like a stream wait)
// and the host seeing the copy done (what Done() reports, like an event
// query), which in manual mode only Acknowledge() grants. So a stash that
// reads a destination too early reads garbage, and one that recycles memory
// before Done() is caught by the pool's counts.
#ifndef CHRONOS_TESTS_WORKER_DEFERRED_COPIER_H_
#define CHRONOS_TESTS_WORKER_DEFERRED_COPIER_H_

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/host_copier.h"
#include "worker/pinned_pool.h"

namespace chronos::worker::testing {

class DeferredCopier : public HostCopier {
 public:
  struct Options {
    // Copies run only when Release() lets them (else each after `delay_us`).
    bool manual = false;
    int delay_us = 200;
    // Host destinations come from this pool when set.
    std::shared_ptr<PinnedPool> pool;
  };
  explicit DeferredCopier(Options o);
  ~DeferredCopier() override;

  PendingCopy StartToHost(const at::Tensor& src) override;
  PendingCopy StartToDevice(const at::Tensor& host, c10::Device device) override;

  // Manual mode: runs every queued copy and returns once their data has
  // landed ...
  void Release();
  // ... and lets Done() report the copies that have landed.
  void Acknowledge();
  int started() const;

  struct Job;  // one copy's state, shared with its event

 private:
  PendingCopy Start(const at::Tensor& src, at::Tensor dst);
  void Loop();

  Options o_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int released_ = 0;  // manual mode: jobs that may run
  int started_ = 0;
  bool running_ = false;                      // a job is being copied
  std::vector<std::shared_ptr<Job>> landed_;  // manual mode: not yet acked
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace chronos::worker::testing

#endif  // CHRONOS_TESTS_WORKER_DEFERRED_COPIER_H_
