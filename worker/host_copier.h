// How the ActivationStash moves bytes between the compute device and host
// memory. Copies are asynchronous: Start* enqueue a copy and return at once
// with the destination tensor and a CopyEvent; the stash may neither read
// the destination nor release the source until the event says the copy has
// finished. The CUDA build (worker/cuda/cuda_host_copier.h) copies into
// pinned memory on a device-to-host stream and back on a host-to-device
// stream, ordered by CUDA events; SyncHostCopier copies at once (a CPU
// worker), and tests use copiers that finish later on another thread, so
// ordering mistakes fail on CPU too. Called only from the executor thread.
#ifndef CHRONOS_WORKER_HOST_COPIER_H_
#define CHRONOS_WORKER_HOST_COPIER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>

namespace chronos::worker {

class CopyEvent {
 public:
  virtual ~CopyEvent() = default;
  // Non-blocking: has the copy finished (on a GPU, has the host seen the
  // event complete)? Only then may the source be released or the
  // destination's memory be reused.
  virtual bool Done() = 0;
  // Orders the compute that follows after the copy: on a GPU the compute
  // stream waits for the event (the host does not block); elsewhere the
  // calling thread blocks until Done().
  virtual void OrderCompute() = 0;
  // Blocks the calling thread until Done().
  virtual void Synchronize() = 0;
};

struct PendingCopy {
  at::Tensor dst;  // owns its storage; not to be read before the event
  std::unique_ptr<CopyEvent> done;
};

class HostCopier {
 public:
  virtual ~HostCopier() = default;
  // Starts copying `src` (a device tensor, contiguous) into host memory.
  // The caller keeps `src` alive until done->Done().
  virtual PendingCopy StartToHost(const at::Tensor& src) = 0;
  // Starts copying `host` to `device`. The caller keeps `host` alive until
  // done->Done().
  virtual PendingCopy StartToDevice(const at::Tensor& host, c10::Device device) = 0;
};

// Copies at once on the calling thread into ordinary memory: every event is
// already done. A CPU worker's copier (host "offload" is then a clone).
class SyncHostCopier : public HostCopier {
 public:
  PendingCopy StartToHost(const at::Tensor& src) override;
  PendingCopy StartToDevice(const at::Tensor& host, c10::Device device) override;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_HOST_COPIER_H_
