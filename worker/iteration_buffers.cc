#include "worker/iteration_buffers.h"

#include <ATen/ATen.h>

#include <chrono>
#include <utility>

namespace chronos::worker {

void IterationBuffers::Init(int num_chunks, int microbatches, std::vector<int64_t> shape,
                            c10::TensorOptions options) {
  microbatches_ = microbatches;
  shape_ = std::move(shape);
  options_ = options;
  const size_t n = static_cast<size_t>(num_chunks) * microbatches;
  slots_.clear();
  slots_.resize(n);
  act_buffers_.assign(n, at::Tensor());
  grad_buffers_.assign(n, at::Tensor());
  sends_.clear();
}

at::Tensor& IterationBuffers::RecvBuffer(bool grad, int chunk, int mb) {
  at::Tensor& b =
      (grad ? grad_buffers_ : act_buffers_)[static_cast<size_t>(chunk) * microbatches_ + mb];
  if (!b.defined()) b = at::empty(shape_, options_);
  return b;
}

void IterationBuffers::AddSend(at::Tensor t, std::unique_ptr<Work> work) {
  sends_.push_back(PendingSend{std::move(t), std::move(work)});
}

absl::Status IterationBuffers::ReapCompletedSends() {
  while (!sends_.empty() && sends_.front().work->IsCompleted()) {
    absl::Status s = sends_.front().work->Wait(absl::ZeroDuration());
    sends_.pop_front();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status IterationBuffers::AwaitSends(absl::Duration timeout, double* waited_seconds) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status first;
  while (!sends_.empty()) {
    absl::Status s = sends_.front().work->Wait(timeout);
    sends_.pop_front();
    if (!s.ok() && first.ok()) first = s;
  }
  *waited_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return first;
}

void IterationBuffers::ClearIteration() {
  for (Slot& s : slots_) {
    s.act = at::Tensor();
    s.act_recv.reset();
    s.grad = at::Tensor();
    s.grad_recv.reset();
    s.out = at::Tensor();
    s.grad_in = at::Tensor();
  }
  sends_.clear();
}

bool IterationBuffers::HasLeftovers() const {
  for (const Slot& s : slots_) {
    if (s.act.defined() || s.act_recv || s.grad.defined() || s.grad_recv || s.out.defined() ||
        s.grad_in.defined()) {
      return true;
    }
  }
  return false;
}

}  // namespace chronos::worker
