#include "tests/worker/deferred_copier.h"

#include <ATen/ATen.h>

#include <chrono>
#include <limits>
#include <utility>

#include "worker/pooled_host_tensor.h"

namespace chronos::worker::testing {

struct DeferredCopier::Job {
  at::Tensor src, dst;
  std::mutex mu;
  std::condition_variable cv;
  bool landed = false;
  bool acknowledged = false;
};

namespace {

class DeferredEvent : public CopyEvent {
 public:
  explicit DeferredEvent(std::shared_ptr<DeferredCopier::Job> job) : job_(std::move(job)) {}
  bool Done() override {
    std::lock_guard<std::mutex> l(job_->mu);
    return job_->landed && job_->acknowledged;
  }
  void OrderCompute() override {
    std::unique_lock<std::mutex> l(job_->mu);
    job_->cv.wait(l, [&] { return job_->landed; });
  }
  void Synchronize() override {
    std::unique_lock<std::mutex> l(job_->mu);
    job_->cv.wait(l, [&] { return job_->landed && job_->acknowledged; });
  }

 private:
  std::shared_ptr<DeferredCopier::Job> job_;
};

at::Tensor Garbage(at::Tensor t) {
  if (at::isFloatingType(t.scalar_type())) {
    t.fill_(std::numeric_limits<double>::quiet_NaN());
  } else {
    t.fill_(-1);
  }
  return t;
}

}  // namespace

DeferredCopier::DeferredCopier(Options o) : o_(std::move(o)) {
  thread_ = std::thread([this] { Loop(); });
}

DeferredCopier::~DeferredCopier() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    released_ = 1 << 30;
  }
  cv_.notify_all();
  thread_.join();
}

PendingCopy DeferredCopier::Start(const at::Tensor& src, at::Tensor dst) {
  auto job = std::make_shared<Job>();
  job->src = src;  // a GPU copy reads the source when it runs, not now
  job->dst = Garbage(std::move(dst));
  job->acknowledged = !o_.manual;
  PendingCopy c;
  c.dst = job->dst;
  c.done = std::make_unique<DeferredEvent>(job);
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(job);
    ++started_;
  }
  cv_.notify_all();
  return c;
}

PendingCopy DeferredCopier::StartToHost(const at::Tensor& src) {
  return Start(src, EmptyPooledHostTensor(o_.pool, src.sizes(), src.scalar_type()));
}

PendingCopy DeferredCopier::StartToDevice(const at::Tensor& host, c10::Device device) {
  return Start(host, at::empty(host.sizes(), host.options().device(device)));
}

void DeferredCopier::Release() {
  std::unique_lock<std::mutex> l(mu_);
  released_ = static_cast<int>(queue_.size());
  cv_.notify_all();
  cv_.wait(l, [&] { return queue_.empty() && !running_; });
}

void DeferredCopier::Acknowledge() {
  std::lock_guard<std::mutex> l(mu_);
  // Jobs already run have left the queue; flag them through their events'
  // shared state: the loop keeps the last landed jobs for this.
  for (auto& j : landed_) {
    std::lock_guard<std::mutex> jl(j->mu);
    j->acknowledged = true;
    j->cv.notify_all();
  }
  landed_.clear();
}

int DeferredCopier::started() const {
  std::lock_guard<std::mutex> l(mu_);
  return started_;
}

void DeferredCopier::Loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || (!queue_.empty() && (!o_.manual || released_ > 0)); });
      if (queue_.empty()) return;
      job = queue_.front();
      queue_.pop_front();
      running_ = true;
      if (o_.manual) --released_;
    }
    if (!o_.manual) std::this_thread::sleep_for(std::chrono::microseconds(o_.delay_us));
    job->dst.copy_(job->src);
    bool stopping = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping = stop_;
      if (o_.manual && !stopping) landed_.push_back(job);
    }
    {
      std::lock_guard<std::mutex> jl(job->mu);
      job->landed = true;
      if (stopping) job->acknowledged = true;
      job->src = at::Tensor();
      job->dst = at::Tensor();  // the caller holds it; the thread must not
      job->cv.notify_all();
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      running_ = false;
    }
    cv_.notify_all();
  }
}

}  // namespace chronos::worker::testing
