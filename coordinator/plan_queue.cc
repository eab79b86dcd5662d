#include "coordinator/plan_queue.h"

#include <algorithm>

namespace chronos::coordinator {

PlanQueue::PlanQueue(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

PlanQueue::~PlanQueue() { Shutdown(); }

void PlanQueue::Enqueue(CancelFlag cancel, std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      cancel->store(true);
      return;
    }
    if (!threads_.empty()) {
      queued_.push_back(Task{std::move(cancel), std::move(task)});
      return;
    }
    ++inline_running_;
  }
  task();
  absl::MutexLock lock(&mu_);
  --inline_running_;
}

size_t PlanQueue::Outstanding() {
  absl::MutexLock lock(&mu_);
  return queued_.size() + running_.size() + inline_running_;
}

void PlanQueue::Loop() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this] {
        mu_.AssertHeld();
        return stopping_ || !queued_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      task = std::move(queued_.front());
      queued_.pop_front();
      running_.push_back(task.cancel);
    }
    task.run();
    absl::MutexLock lock(&mu_);
    running_.erase(std::find(running_.begin(), running_.end(), task.cancel));
  }
}

void PlanQueue::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (Task& t : queued_) t.cancel->store(true);
    queued_.clear();
    for (const CancelFlag& c : running_) c->store(true);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace chronos::coordinator
