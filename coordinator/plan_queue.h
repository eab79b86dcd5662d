// The coordinator's background planner: a few threads of its own that run
// the first plan of each submitted job (and of each job a restart found
// still PLANNING), so that SubmitJob answers at once and a search of minutes
// holds no RPC thread and no lock. Every task carries a cancellation flag:
// the job's cancel sets it, and so does Shutdown for every task queued or
// running; the task polls it through the planner's should_stop.
//
// Thread-safe. With zero threads, Enqueue runs the task on the caller's
// thread before it returns (deterministic tests).
#ifndef CHRONOS_COORDINATOR_PLAN_QUEUE_H_
#define CHRONOS_COORDINATOR_PLAN_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chronos::coordinator {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

class PlanQueue {
 public:
  explicit PlanQueue(int threads);
  ~PlanQueue();  // Shutdown()
  PlanQueue(const PlanQueue&) = delete;
  PlanQueue& operator=(const PlanQueue&) = delete;

  // Runs `task` on a planner thread, in submission order. After Shutdown
  // the task is dropped and its flag set.
  void Enqueue(CancelFlag cancel, std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);
  // Tasks queued or running.
  size_t Outstanding() ABSL_LOCKS_EXCLUDED(mu_);
  // Sets every flag, drops the queued tasks and waits for the running ones.
  // Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Task {
    CancelFlag cancel;
    std::function<void()> run;
  };
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  std::deque<Task> queued_ ABSL_GUARDED_BY(mu_);
  std::vector<CancelFlag> running_ ABSL_GUARDED_BY(mu_);
  size_t inline_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // written only by the constructor and Shutdown
};

}  // namespace chronos::coordinator

#endif  // CHRONOS_COORDINATOR_PLAN_QUEUE_H_
