#include "coordinator/worker_registry.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace chronos::coordinator {
namespace {

// Dead workers stay listed this long (so `chronosctl workers` shows them),
// then are forgotten to bound memory.
constexpr absl::Duration kForgetDeadAfter = absl::Hours(1);
constexpr size_t kMaxNameBytes = 253;  // a DNS name (pod name)

bool IsPrintable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

}  // namespace

WorkerRegistry::WorkerRegistry(Clock* clock, absl::Duration heartbeat_interval,
                               int heartbeat_misses)
    : clock_(clock),
      timeout_(heartbeat_interval * std::max(1, heartbeat_misses)),
      rng_state_(std::random_device()()) {}

std::string WorkerRegistry::NewId(const std::string& name) {
  // Unique per incarnation, readable: the pod name plus a random suffix.
  while (true) {
    rng_state_ = rng_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::string id = absl::StrFormat("%s-%06x", name.empty() ? "worker" : name,
                                           static_cast<uint32_t>(rng_state_ >> 40) & 0xffffff);
    if (workers_.count(id) == 0) return id;
  }
}

absl::StatusOr<WorkerRegistry::Registration> WorkerRegistry::Register(
    const v1::WorkerInfo& info, const std::string& previous_worker_id) {
  if (info.name().size() > kMaxNameBytes || !IsPrintable(info.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("info.name must be at most ", kMaxNameBytes, " printable ASCII characters"));
  }
  if (previous_worker_id.size() > kMaxNameBytes + 8 || !IsPrintable(previous_worker_id)) {
    return absl::InvalidArgumentError(
        "previous_worker_id must be a worker id this coordinator returned");
  }
  if (info.hbm_bytes() < 0 || info.host_memory_bytes() < 0) {
    return absl::InvalidArgumentError("info.hbm_bytes and info.host_memory_bytes must be >= 0");
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  Registration result;
  if (!previous_worker_id.empty()) {
    auto it = workers_.find(previous_worker_id);
    if (it != workers_.end() && it->second.state == v1::WORKER_STATE_DEAD &&
        !it->second.superseded_by.empty()) {
      auto taker = workers_.find(it->second.superseded_by);
      if (taker != workers_.end() && taker->second.state != v1::WORKER_STATE_DEAD) {
        return absl::AlreadyExistsError(
            absl::StrCat("worker name '", info.name(), "' was taken by worker ", taker->first,
                         ", which registered after ", previous_worker_id,
                         " and is alive: two worker processes share one name; give each its "
                         "own --name (the default is the host name, plus the GPU for "
                         "--device cuda:N)"));
      }
    }
  }
  result.worker_id = previous_worker_id.empty() ? NewId(info.name()) : previous_worker_id;
  // Another live entry under the same name is an earlier incarnation of
  // this process (a restarted pod keeps its name): it is gone.
  if (!info.name().empty()) {
    for (auto& [id, w] : workers_) {
      if (id == previous_worker_id || w.info.name() != info.name() ||
          w.state == v1::WORKER_STATE_DEAD) {
        continue;
      }
      w.state = v1::WORKER_STATE_DEAD;
      w.superseded_by = result.worker_id;
      if (w.outbox) w.outbox->Close();
      w.outbox.reset();
      if (w.binding) result.superseded.emplace_back(id, *w.binding);
      w.binding.reset();
    }
  }
  if (!previous_worker_id.empty()) {
    auto it = workers_.find(previous_worker_id);
    if (it == workers_.end()) {
      // Adopted: the coordinator restarted and forgot it.
      Worker w;
      w.id = previous_worker_id;
      w.order = next_order_++;
      it = workers_.emplace(previous_worker_id, std::move(w)).first;
    }
    Worker& w = it->second;
    w.info = info;
    w.last_heartbeat = now;
    w.restored = false;
    if (w.state == v1::WORKER_STATE_DEAD) {
      w.state = v1::WORKER_STATE_IDLE;
      w.binding.reset();
    }
    w.superseded_by.clear();
    return result;
  }
  Worker w;
  w.id = result.worker_id;
  w.info = info;
  w.last_heartbeat = now;
  w.order = next_order_++;
  workers_.emplace(w.id, std::move(w));
  return result;
}

bool WorkerRegistry::Heartbeat(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.state == v1::WORKER_STATE_DEAD) {
    return false;
  }
  it->second.last_heartbeat = clock_->Now();
  it->second.restored = false;
  return true;
}

absl::StatusOr<std::shared_ptr<CommandQueue>> WorkerRegistry::Attach(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " is not registered; call Register first"));
  }
  Worker& w = it->second;
  if (w.state == v1::WORKER_STATE_DEAD) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", worker_id, " was declared dead; call Register with previous_worker_id"));
  }
  if (w.outbox) w.outbox->Close();
  w.outbox = std::make_shared<CommandQueue>();
  w.last_heartbeat = clock_->Now();
  return w.outbox;
}

void WorkerRegistry::Detach(const std::string& worker_id, const CommandQueue* queue) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it != workers_.end() && it->second.outbox.get() == queue) {
    it->second.outbox.reset();
  }
}

bool WorkerRegistry::Send(const std::string& worker_id, v1::WorkerCommand command) {
  std::shared_ptr<CommandQueue> outbox;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(worker_id);
    if (it == workers_.end() || !it->second.outbox) return false;
    outbox = it->second.outbox;
  }
  return outbox->Push(std::move(command));
}

std::vector<std::string> WorkerRegistry::IdleAttached() const {
  absl::MutexLock lock(&mu_);
  std::vector<const Worker*> idle;
  for (const auto& [id, w] : workers_) {
    if (w.state == v1::WORKER_STATE_IDLE && w.outbox && !w.outbox->closed()) {
      idle.push_back(&w);
    }
  }
  std::sort(idle.begin(), idle.end(),
            [](const Worker* a, const Worker* b) { return a->order < b->order; });
  std::vector<std::string> ids;
  for (const Worker* w : idle) ids.push_back(w->id);
  return ids;
}

void WorkerRegistry::Bind(const std::string& worker_id, const WorkerBinding& binding) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.state == v1::WORKER_STATE_DEAD) return;
  it->second.state = v1::WORKER_STATE_BUSY;
  it->second.binding = binding;
}

void WorkerRegistry::Release(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  it->second.binding.reset();
  if (it->second.state == v1::WORKER_STATE_BUSY) {
    it->second.state = v1::WORKER_STATE_IDLE;
  }
}

void WorkerRegistry::Restore(const std::string& worker_id, const WorkerBinding& binding) {
  absl::MutexLock lock(&mu_);
  Worker& w = workers_[worker_id];
  if (w.id.empty()) {
    w.id = worker_id;
    w.order = next_order_++;
    w.info.set_name(worker_id);
  }
  w.state = v1::WORKER_STATE_BUSY;
  w.binding = binding;
  w.last_heartbeat = clock_->Now();
  w.restored = true;
}

void WorkerRegistry::StartRestoredTimeouts() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  for (auto& [id, w] : workers_) {
    if (w.restored && w.state != v1::WORKER_STATE_DEAD) w.last_heartbeat = now;
  }
}

std::optional<WorkerBinding> WorkerRegistry::BindingOf(const std::string& worker_id) const {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return std::nullopt;
  return it->second.binding;
}

std::optional<v1::WorkerState> WorkerRegistry::StateOf(const std::string& worker_id) const {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return std::nullopt;
  return it->second.state;
}

std::vector<std::pair<std::string, WorkerBinding>> WorkerRegistry::ExpireDead() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<std::pair<std::string, WorkerBinding>> dead;
  for (auto it = workers_.begin(); it != workers_.end();) {
    Worker& w = it->second;
    if (w.state == v1::WORKER_STATE_DEAD) {
      if (now - w.last_heartbeat > kForgetDeadAfter) {
        it = workers_.erase(it);
        continue;
      }
    } else if (now - w.last_heartbeat > timeout_) {
      w.state = v1::WORKER_STATE_DEAD;
      if (w.outbox) w.outbox->Close();
      w.outbox.reset();
      dead.emplace_back(w.id, w.binding.value_or(WorkerBinding()));
      w.binding.reset();
    }
    ++it;
  }
  return dead;
}

std::vector<v1::WorkerStatus> WorkerRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<const Worker*> all;
  for (const auto& [id, w] : workers_) all.push_back(&w);
  std::sort(all.begin(), all.end(),
            [](const Worker* a, const Worker* b) { return a->order < b->order; });
  std::vector<v1::WorkerStatus> out;
  for (const Worker* w : all) {
    v1::WorkerStatus s;
    s.set_worker_id(w->id);
    *s.mutable_info() = w->info;
    s.set_state(w->state);
    if (w->binding) s.set_job(w->binding->job);
    const int64_t nanos = absl::ToUnixNanos(w->last_heartbeat);
    s.mutable_last_heartbeat()->set_seconds(nanos / 1000000000);
    s.mutable_last_heartbeat()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
    s.set_attached(w->outbox != nullptr && !w->outbox->closed());
    out.push_back(std::move(s));
  }
  return out;
}

std::map<v1::WorkerState, int> WorkerRegistry::Counts() const {
  absl::MutexLock lock(&mu_);
  std::map<v1::WorkerState, int> counts = {
      {v1::WORKER_STATE_IDLE, 0}, {v1::WORKER_STATE_BUSY, 0}, {v1::WORKER_STATE_DEAD, 0}};
  for (const auto& [id, w] : workers_) ++counts[w.state];
  return counts;
}

std::map<std::string, v1::WorkerState> WorkerRegistry::StatesByName() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, v1::WorkerState> out;
  for (const auto& [id, w] : workers_) {
    auto [it, added] = out.emplace(w.info.name(), w.state);
    if (!added && it->second == v1::WORKER_STATE_DEAD) it->second = w.state;
  }
  return out;
}

void WorkerRegistry::CloseAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, w] : workers_) {
    if (w.outbox) w.outbox->Close();
  }
}

}  // namespace chronos::coordinator
