// The worker's store of saved activations, keyed by (micro-batch, chunk,
// unit, tensor name). Entries live on the compute device, or partly in host
// memory after Offload. Every change is reported to the MemoryLedger, so the
// ledger's bytes are exactly the bytes the stash holds on the device.
//
// Offload(fraction) moves the first floor(fraction * numel) elements of every
// entry of a (micro-batch, chunk) to host memory (core::OffloadElements) and
// keeps the remainder resident; Reload reassembles the tensors. This is the
// same arithmetic the simulator uses, so their byte counts agree exactly.
//
// Copies are asynchronous (worker/host_copier.h). An entry moves through
//   resident -> offloading -> offloaded -> reloading -> resident:
//  - Offload starts the device-to-host copy and returns. The whole device
//    tensor stays alive, and in the ledger, until the copy is done; then
//    (at the next Poll, or at once when the copy is already done) the tail
//    is kept, the source released and the head's bytes move to host in the
//    ledger. So the ledger drops bytes exactly when the allocator can.
//  - Reload starts the host-to-device copy and returns; the bytes count as
//    resident from then on (the device buffer exists). Get orders the
//    compute after the copy (on a GPU a stream wait, not a host wait) and
//    reassembles the tensor. The host block is kept until the copy is seen
//    done, so the pinned pool never reuses memory a copy still reads.
//  - Reload of an entry whose offload is still in flight keeps the device
//    tensor that never left (no copy back); Erase of an entry with a copy in
//    flight waits for that copy (only failures and incomplete schedules do).
// Poll() completes what has finished; the executor calls it between
// actions. With copies that finish at once (SyncHostCopier, the CPU worker)
// every transition happens inside Offload/Reload, as a synchronous stash.
//
// Not thread-safe: owned and used by the executor thread.
#ifndef CHRONOS_WORKER_STASH_H_
#define CHRONOS_WORKER_STASH_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "worker/host_copier.h"
#include "worker/memory_ledger.h"

namespace chronos::worker {

class ActivationStash {
 public:
  // `ledger` must outlive the stash. `copier` may be null (synchronous
  // copies into ordinary host memory); else it must outlive the stash.
  explicit ActivationStash(MemoryLedger* ledger, HostCopier* copier = nullptr);
  ~ActivationStash();

  ActivationStash(const ActivationStash&) = delete;
  ActivationStash& operator=(const ActivationStash&) = delete;

  // Stores `t` (resident). Replaces an existing entry of the same key.
  void Put(int mb, int chunk, int unit, const std::string& name, at::Tensor t);
  bool Has(int mb, int chunk, int unit, const std::string& name) const;
  // The entry, which must be present and resident or reloading (then the
  // compute is ordered after the copy). CHECK-fails for an offloaded entry:
  // reading it means the schedule lacks a RELOAD.
  at::Tensor Get(int mb, int chunk, int unit, const std::string& name);
  void Erase(int mb, int chunk, int unit, const std::string& name);
  // Drops every entry of (mb, chunk), resident or offloaded.
  void EraseChunk(int mb, int chunk);

  // Starts moving floor(fraction*numel) leading elements of every entry of
  // (mb, chunk) to host memory; returns the bytes it will move.
  int64_t Offload(int mb, int chunk, double fraction);
  // Starts bringing every offloaded part of (mb, chunk) back; returns the
  // bytes copied (an offload still in flight is undone without a copy).
  int64_t Reload(int mb, int chunk);
  // Completes the copies that have finished. Cheap; never blocks.
  void Poll();
  // Blocks until every copy in flight has finished, then completes them.
  void Synchronize();
  // True while some entry of (mb, chunk) has a part in host memory that no
  // RELOAD has started to bring back.
  bool IsOffloaded(int mb, int chunk) const;
  // Copies started and not yet completed (offloads and reloads).
  int copies_in_flight() const;

  int64_t ResidentBytes(int mb, int chunk) const;
  size_t size() const { return entries_.size(); }
  void Clear();

 private:
  struct Entry {
    at::Tensor resident;  // whole tensor, or its tail once offloaded
    std::vector<int64_t> full_shape;
    int64_t host_elements = 0;  // > 0 from Offload until reassembled
    at::Tensor host;            // the head in host memory
    // Offload in flight: `source` is the whole device tensor.
    at::Tensor source;
    std::unique_ptr<CopyEvent> to_host;
    // Reload in flight: `back` is the head on the device.
    at::Tensor back;
    std::unique_ptr<CopyEvent> to_device;
  };
  // Memory a copy may still touch, kept until its event is done.
  struct Retired {
    at::Tensor keep;
    std::unique_ptr<CopyEvent> done;
  };
  using Key = std::tuple<int, int, int, std::string>;
  static int64_t Bytes(const at::Tensor& t);
  void CompleteOffload(Entry& e);
  void FinishReload(Entry& e);
  // Drops an entry's bytes from the ledger; waits for its copies first.
  void Forget(Entry& e);

  MemoryLedger* ledger_;
  std::unique_ptr<HostCopier> own_copier_;  // when none was given
  HostCopier* copier_;
  std::map<Key, Entry> entries_;
  std::vector<Retired> retired_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STASH_H_
