#include "worker/stash.h"

#include <ATen/ATen.h>

#include <climits>
#include <utility>

#include "core/activation_layout.h"

namespace chronos::worker {
namespace {

// Calls fn(entry) for every entry of (mb, chunk); keys sort by (mb, chunk)
// first, so they form one contiguous range of the map.
template <typename Map, typename Fn>
void ForEachInChunk(Map& entries, int mb, int chunk, Fn fn) {
  for (auto it = entries.lower_bound(typename Map::key_type{mb, chunk, INT_MIN, std::string()});
       it != entries.end() && std::get<0>(it->first) == mb && std::get<1>(it->first) == chunk;
       ++it) {
    fn(it->second);
  }
}

class DoneEvent : public CopyEvent {
 public:
  bool Done() override { return true; }
  void OrderCompute() override {}
  void Synchronize() override {}
};

}  // namespace

PendingCopy SyncHostCopier::StartToHost(const at::Tensor& src) {
  // On a CPU worker the "device" is host memory already: a clone is the copy.
  return {src.is_cpu() ? src.clone() : src.to(at::kCPU), std::make_unique<DoneEvent>()};
}

PendingCopy SyncHostCopier::StartToDevice(const at::Tensor& host, c10::Device device) {
  return {host.to(device, /*non_blocking=*/false, /*copy=*/true), std::make_unique<DoneEvent>()};
}

ActivationStash::ActivationStash(MemoryLedger* ledger, HostCopier* copier) : ledger_(ledger) {
  if (copier == nullptr) {
    own_copier_ = std::make_unique<SyncHostCopier>();
    copier = own_copier_.get();
  }
  copier_ = copier;
}

ActivationStash::~ActivationStash() { Clear(); }

int64_t ActivationStash::Bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

void ActivationStash::Put(int mb, int chunk, int unit, const std::string& name, at::Tensor t) {
  TORCH_CHECK(t.defined(), "stash: undefined tensor for ", name);
  Erase(mb, chunk, unit, name);
  Entry e;
  e.full_shape = t.sizes().vec();
  e.resident = std::move(t);
  ledger_->AddResident(Bytes(e.resident));
  entries_.emplace(Key{mb, chunk, unit, name}, std::move(e));
}

bool ActivationStash::Has(int mb, int chunk, int unit, const std::string& name) const {
  return entries_.count(Key{mb, chunk, unit, name}) > 0;
}

at::Tensor ActivationStash::Get(int mb, int chunk, int unit, const std::string& name) {
  auto it = entries_.find(Key{mb, chunk, unit, name});
  TORCH_CHECK(it != entries_.end(), "stash: no entry (mb ", mb, ", chunk ", chunk, ", unit ", unit,
              ", ", name, ")");
  Entry& e = it->second;
  if (e.to_device) FinishReload(e);
  TORCH_CHECK(e.host_elements == 0, "stash: entry (mb ", mb, ", chunk ", chunk, ", unit ", unit,
              ", ", name, ") is offloaded; the schedule lacks a RELOAD");
  return e.resident;
}

void ActivationStash::Forget(Entry& e) {
  // A copy in flight still reads or writes this entry's memory; an erase
  // mid-copy happens only on failures, so waiting here costs nothing in the
  // steady state and keeps every byte accounted for.
  if (e.to_host) e.to_host->Synchronize();
  if (e.to_device) e.to_device->Synchronize();
  if (e.to_host) {
    ledger_->AddResident(-Bytes(e.source));  // never moved in the ledger
    return;
  }
  ledger_->AddResident(-Bytes(e.resident) - Bytes(e.back));
  if (e.host_elements > 0 && !e.to_device) ledger_->DropOffloaded(Bytes(e.host));
}

void ActivationStash::Erase(int mb, int chunk, int unit, const std::string& name) {
  auto it = entries_.find(Key{mb, chunk, unit, name});
  if (it == entries_.end()) return;
  Forget(it->second);
  entries_.erase(it);
}

void ActivationStash::EraseChunk(int mb, int chunk) {
  auto it = entries_.lower_bound(Key{mb, chunk, INT_MIN, std::string()});
  while (it != entries_.end() && std::get<0>(it->first) == mb && std::get<1>(it->first) == chunk) {
    Forget(it->second);
    it = entries_.erase(it);
  }
}

void ActivationStash::CompleteOffload(Entry& e) {
  const int64_t n = e.host_elements;
  // A clone, not a view: the view would keep the whole source storage alive
  // and the device memory the ledger says was freed would not be.
  e.resident = e.source.reshape({-1}).slice(0, n).clone();
  e.source = at::Tensor();
  e.to_host.reset();
  ledger_->MoveToHost(Bytes(e.host));
}

int64_t ActivationStash::Offload(int mb, int chunk, double fraction) {
  int64_t moved = 0;
  ForEachInChunk(entries_, mb, chunk, [&](Entry& e) {
    if (e.host_elements > 0) return;  // already offloaded; keep as is
    const int64_t n = OffloadElements(e.resident.numel(), fraction);
    if (n == 0) return;
    at::Tensor head = e.resident.reshape({-1}).slice(0, 0, n);
    PendingCopy c = copier_->StartToHost(head);
    e.host = std::move(c.dst);
    e.source = std::move(e.resident);
    e.resident = at::Tensor();
    e.to_host = std::move(c.done);
    e.host_elements = n;
    moved += Bytes(e.host);
    if (e.to_host->Done()) CompleteOffload(e);
  });
  return moved;
}

int64_t ActivationStash::Reload(int mb, int chunk) {
  int64_t moved = 0;
  ForEachInChunk(entries_, mb, chunk, [&](Entry& e) {
    if (e.host_elements == 0 || e.to_device) return;
    if (e.to_host) {
      // The data never left the device: keep it, and keep the host block
      // until the copy into it is done.
      if (!e.to_host->Done()) {
        retired_.push_back({std::move(e.host), std::move(e.to_host)});
      }
      e.resident = std::move(e.source);
      e.source = at::Tensor();
      e.host = at::Tensor();
      e.to_host.reset();
      e.host_elements = 0;
      return;
    }
    PendingCopy c = copier_->StartToDevice(e.host, e.resident.device());
    const int64_t bytes = Bytes(e.host);
    e.back = std::move(c.dst);
    e.to_device = std::move(c.done);
    ledger_->MoveToDevice(bytes);
    moved += bytes;
    if (e.to_device->Done()) FinishReload(e);  // a synchronous copier
  });
  return moved;
}

void ActivationStash::FinishReload(Entry& e) {
  e.to_device->OrderCompute();
  e.resident = at::cat({e.back, e.resident}).view(e.full_shape);
  e.back = at::Tensor();
  e.host_elements = 0;
  // The compute is ordered after the copy, but the host may not have seen
  // it finish: the host block stays out of the pool until it has.
  if (!e.to_device->Done()) {
    retired_.push_back({std::move(e.host), std::move(e.to_device)});
  }
  e.host = at::Tensor();
  e.to_device.reset();
}

void ActivationStash::Poll() {
  for (auto& [key, e] : entries_) {
    if (e.to_host && e.to_host->Done()) CompleteOffload(e);
  }
  size_t kept = 0;
  for (Retired& r : retired_) {
    if (!r.done->Done()) retired_[kept++] = std::move(r);
  }
  retired_.resize(kept);
}

void ActivationStash::Synchronize() {
  for (auto& [key, e] : entries_) {
    if (e.to_host) e.to_host->Synchronize();
    if (e.to_device) e.to_device->Synchronize();
  }
  for (Retired& r : retired_) r.done->Synchronize();
  Poll();
}

int ActivationStash::copies_in_flight() const {
  int n = 0;
  for (const auto& [key, e] : entries_) {
    n += (e.to_host ? 1 : 0) + (e.to_device ? 1 : 0);
  }
  return n;
}

bool ActivationStash::IsOffloaded(int mb, int chunk) const {
  bool offloaded = false;
  ForEachInChunk(entries_, mb, chunk,
                 [&](const Entry& e) { offloaded |= e.host_elements > 0 && !e.to_device; });
  return offloaded;
}

int64_t ActivationStash::ResidentBytes(int mb, int chunk) const {
  int64_t total = 0;
  ForEachInChunk(entries_, mb, chunk, [&](const Entry& e) {
    total += Bytes(e.resident) + Bytes(e.source) + Bytes(e.back);
  });
  return total;
}

void ActivationStash::Clear() {
  for (auto& [key, e] : entries_) Forget(e);
  entries_.clear();
  for (Retired& r : retired_) r.done->Synchronize();
  retired_.clear();
}

}  // namespace chronos::worker
