// The worker's store of saved activations, keyed by (micro-batch, chunk,
// unit, tensor name). Entries live on the compute device, or partly in host
// memory after Offload. Every change is reported to the MemoryLedger, so the
// ledger's bytes are exactly the bytes the stash holds.
//
// Offload(fraction) moves the first floor(fraction * numel) elements of every
// entry of a (micro-batch, chunk) to host memory (core::OffloadElements) and
// keeps the remainder resident; Reload reassembles the tensors. This is the
// same arithmetic the simulator uses, so their byte counts agree exactly.
//
// Not thread-safe: owned and used by the executor thread.
#ifndef CHRONOS_WORKER_STASH_H_
#define CHRONOS_WORKER_STASH_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "worker/memory_ledger.h"

namespace chronos::worker {

class HostCopier;  // worker/host_copier.h: how bytes reach host memory

class ActivationStash {
 public:
  // `ledger` must outlive the stash. `copier` may be null (synchronous
  // copies into ordinary host memory).
  explicit ActivationStash(MemoryLedger* ledger, HostCopier* copier = nullptr);
  ~ActivationStash();

  ActivationStash(const ActivationStash&) = delete;
  ActivationStash& operator=(const ActivationStash&) = delete;

  // Stores `t` (resident). Replaces an existing entry of the same key.
  void Put(int mb, int chunk, int unit, const std::string& name, at::Tensor t);
  bool Has(int mb, int chunk, int unit, const std::string& name) const;
  // The entry, which must be present and resident (CHECK-fails otherwise:
  // reading an offloaded entry means the schedule lacks a RELOAD).
  at::Tensor Get(int mb, int chunk, int unit, const std::string& name) const;
  void Erase(int mb, int chunk, int unit, const std::string& name);
  // Drops every entry of (mb, chunk), resident or offloaded.
  void EraseChunk(int mb, int chunk);

  // Moves floor(fraction*numel) leading elements of every entry of
  // (mb, chunk) to host memory; returns the bytes moved.
  int64_t Offload(int mb, int chunk, double fraction);
  // Brings every offloaded part of (mb, chunk) back; returns the bytes moved.
  int64_t Reload(int mb, int chunk);
  bool IsOffloaded(int mb, int chunk) const;

  int64_t ResidentBytes(int mb, int chunk) const;
  size_t size() const { return entries_.size(); }
  void Clear();

 private:
  struct Entry {
    at::Tensor resident;   // whole tensor, or its tail after an offload
    at::Tensor host;       // offloaded head (flattened), undefined if none
    std::vector<int64_t> full_shape;
    int64_t host_elements = 0;
  };
  using Key = std::tuple<int, int, int, std::string>;
  static int64_t Bytes(const at::Tensor& t);

  MemoryLedger* ledger_;
  HostCopier* copier_;
  std::map<Key, Entry> entries_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_STASH_H_
