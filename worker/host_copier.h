// How the ActivationStash moves bytes between the compute device and host
// memory. The CUDA build supplies one that copies into pinned memory on a side
// stream; with none (nullptr) the stash makes plain synchronous copies, which
// is all a CPU worker needs. Called only from the executor thread.
#ifndef CHRONOS_WORKER_HOST_COPIER_H_
#define CHRONOS_WORKER_HOST_COPIER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace chronos::worker {

class HostCopier {
 public:
  virtual ~HostCopier() = default;
  // A host-memory copy of `src` that owns its storage (never a view of it).
  virtual at::Tensor ToHost(const at::Tensor& src) = 0;
  // A copy of `host` on `device` that owns its storage.
  virtual at::Tensor ToDevice(const at::Tensor& host, c10::Device device) = 0;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_HOST_COPIER_H_
