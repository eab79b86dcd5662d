#include "worker/stash.h"

#include <ATen/ATen.h>

#include <climits>
#include <utility>

#include "core/activation_layout.h"
#include "worker/host_copier.h"

namespace chronos::worker {
namespace {

// Host copy of a device slice that owns its storage. On a CPU worker the
// "device" is host memory already, so a clone is the copy.
at::Tensor DefaultToHost(const at::Tensor& src) {
  return src.is_cpu() ? src.clone() : src.to(at::kCPU);
}

// Calls fn(entry) for every entry of (mb, chunk); keys sort by (mb, chunk)
// first, so they form one contiguous range of the map.
template <typename Map, typename Fn>
void ForEachInChunk(Map& entries, int mb, int chunk, Fn fn) {
  for (auto it = entries.lower_bound(
           typename Map::key_type{mb, chunk, INT_MIN, std::string()});
       it != entries.end() && std::get<0>(it->first) == mb &&
       std::get<1>(it->first) == chunk;
       ++it) {
    fn(it->second);
  }
}

}  // namespace

ActivationStash::ActivationStash(MemoryLedger* ledger, HostCopier* copier)
    : ledger_(ledger), copier_(copier) {}

ActivationStash::~ActivationStash() { Clear(); }

int64_t ActivationStash::Bytes(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

void ActivationStash::Put(int mb, int chunk, int unit, const std::string& name,
                          at::Tensor t) {
  TORCH_CHECK(t.defined(), "stash: undefined tensor for ", name);
  Erase(mb, chunk, unit, name);
  Entry e;
  e.full_shape = t.sizes().vec();
  e.resident = std::move(t);
  ledger_->AddResident(Bytes(e.resident));
  entries_.emplace(Key{mb, chunk, unit, name}, std::move(e));
}

bool ActivationStash::Has(int mb, int chunk, int unit,
                          const std::string& name) const {
  return entries_.count(Key{mb, chunk, unit, name}) > 0;
}

at::Tensor ActivationStash::Get(int mb, int chunk, int unit,
                                const std::string& name) const {
  auto it = entries_.find(Key{mb, chunk, unit, name});
  TORCH_CHECK(it != entries_.end(), "stash: no entry (mb ", mb, ", chunk ",
              chunk, ", unit ", unit, ", ", name, ")");
  TORCH_CHECK(it->second.host_elements == 0, "stash: entry (mb ", mb,
              ", chunk ", chunk, ", unit ", unit, ", ", name,
              ") is offloaded; the schedule lacks a RELOAD");
  return it->second.resident;
}

void ActivationStash::Erase(int mb, int chunk, int unit,
                            const std::string& name) {
  auto it = entries_.find(Key{mb, chunk, unit, name});
  if (it == entries_.end()) return;
  ledger_->AddResident(-Bytes(it->second.resident));
  if (it->second.host_elements > 0) {
    ledger_->DropOffloaded(Bytes(it->second.host));
  }
  entries_.erase(it);
}

void ActivationStash::EraseChunk(int mb, int chunk) {
  auto it = entries_.lower_bound(Key{mb, chunk, INT_MIN, std::string()});
  while (it != entries_.end() && std::get<0>(it->first) == mb &&
         std::get<1>(it->first) == chunk) {
    ledger_->AddResident(-Bytes(it->second.resident));
    if (it->second.host_elements > 0) {
      ledger_->DropOffloaded(Bytes(it->second.host));
    }
    it = entries_.erase(it);
  }
}

int64_t ActivationStash::Offload(int mb, int chunk, double fraction) {
  int64_t moved = 0;
  ForEachInChunk(entries_, mb, chunk, [&](Entry& e) {
    if (e.host_elements > 0) return;  // already offloaded; keep as is
    const int64_t n = OffloadElements(e.resident.numel(), fraction);
    if (n == 0) return;
    at::Tensor flat = e.resident.reshape({-1});
    at::Tensor head = flat.slice(0, 0, n);
    e.host = copier_ != nullptr ? copier_->ToHost(head) : DefaultToHost(head);
    // A clone, not a view: the view would keep the whole original storage
    // alive and the device memory the ledger says was freed would not be.
    e.resident = flat.slice(0, n).clone();
    e.host_elements = n;
    const int64_t bytes = Bytes(e.host);
    ledger_->MoveToHost(bytes);
    moved += bytes;
  });
  return moved;
}

int64_t ActivationStash::Reload(int mb, int chunk) {
  int64_t moved = 0;
  ForEachInChunk(entries_, mb, chunk, [&](Entry& e) {
    if (e.host_elements == 0) return;
    const c10::Device device = e.resident.device();
    at::Tensor back = copier_ != nullptr ? copier_->ToDevice(e.host, device)
                                         : e.host.to(device);
    const int64_t bytes = Bytes(e.host);
    e.resident = at::cat({back, e.resident}).view(e.full_shape);
    e.host = at::Tensor();
    e.host_elements = 0;
    ledger_->MoveToDevice(bytes);
    moved += bytes;
  });
  return moved;
}

bool ActivationStash::IsOffloaded(int mb, int chunk) const {
  bool offloaded = false;
  ForEachInChunk(entries_, mb, chunk,
                 [&](const Entry& e) { offloaded |= e.host_elements > 0; });
  return offloaded;
}

int64_t ActivationStash::ResidentBytes(int mb, int chunk) const {
  int64_t total = 0;
  ForEachInChunk(entries_, mb, chunk,
                 [&](const Entry& e) { total += Bytes(e.resident); });
  return total;
}

void ActivationStash::Clear() {
  for (auto& [key, e] : entries_) {
    ledger_->AddResident(-Bytes(e.resident));
    if (e.host_elements > 0) ledger_->DropOffloaded(Bytes(e.host));
  }
  entries_.clear();
}

}  // namespace chronos::worker
