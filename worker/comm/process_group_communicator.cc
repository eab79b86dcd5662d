#include "worker/comm/process_group_communicator.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <string>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "worker/comm/done_work.h"

namespace chronos::worker {
namespace {

std::chrono::milliseconds ToChrono(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return std::chrono::milliseconds(0);  // c10d's kNoTimeout
  // c10d reads 0 ms as "wait forever"; a zero or negative timeout means
  // "poll once", the closest being 1 ms.
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// Gloo and c10d report timeouts only through their messages ("Timed out
// waiting 100ms for recv operation", "Operation timed out!").
absl::Status FromMessage(const std::string& message, const std::string& op) {
  std::string lower = message;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::string text = absl::StrCat(op, ": ", message);
  if (absl::StrContains(lower, "timed out") || absl::StrContains(lower, "timeout")) {
    return absl::DeadlineExceededError(text);
  }
  return absl::UnavailableError(text);
}

// The one place c10d/Gloo exceptions become statuses; nothing escapes.
template <typename Fn>
absl::Status Guarded(const std::string& op, Fn&& fn) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return FromMessage(e.what_without_backtrace(), op);
  } catch (const std::exception& e) {
    return FromMessage(e.what(), op);
  } catch (...) {
    return absl::UnknownError(absl::StrCat(op, ": unknown exception"));
  }
}

absl::Status WaitWork(c10d::Work& work, absl::Duration timeout, const std::string& op) {
  return Guarded(op, [&]() -> absl::Status {
    if (!work.wait(ToChrono(timeout))) {
      return absl::UnavailableError(absl::StrCat(op, ": aborted"));
    }
    return absl::OkStatus();
  });
}

class BackendWork : public Work {
 public:
  BackendWork(c10::intrusive_ptr<c10d::Work> work, std::string op, bool stream_ordered)
      : work_(std::move(work)), op_(std::move(op)), stream_ordered_(stream_ordered) {}

  bool IsCompleted() override {
    if (done_) return true;
    try {
      return work_->isCompleted();
    } catch (...) {
      return false;
    }
  }

  // A timed-out c10d wait finishes the work with an error, so the first
  // result is final and repeated Waits return it.
  absl::Status Wait(absl::Duration timeout) override {
    if (!done_) {
      status_ = WaitWork(*work_, stream_ordered_ ? absl::InfiniteDuration() : timeout, op_);
      done_ = true;
    }
    return status_;
  }

 private:
  // c10d's Send/RecvWork holds the tensor, which keeps it alive in flight.
  c10::intrusive_ptr<c10d::Work> work_;
  std::string op_;
  bool stream_ordered_;
  bool done_ = false;
  absl::Status status_;
};

}  // namespace

struct ProcessGroupCommunicator::Groups {
  c10::intrusive_ptr<c10d::Backend> world;
  c10::intrusive_ptr<c10d::Backend> pipeline;
  c10::intrusive_ptr<c10d::Backend> data;

  c10d::Backend& Get(Group g) {
    switch (g) {
      case Group::kWorld:
        return *world;
      case Group::kPipeline:
        return *pipeline;
      case Group::kData:
        return *data;
    }
    return *world;
  }
};

absl::StatusOr<std::unique_ptr<ProcessGroupCommunicator>> ProcessGroupCommunicator::Create(
    c10::intrusive_ptr<c10d::Store> store, const ProcessGroupOptions& o, const std::string& name,
    bool stream_ordered, const BackendFactory& make_backend) {
  if (!store) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": null store"));
  }
  if (o.pipeline < 1 || o.data_parallel < 1 || o.world_rank < 0 ||
      o.world_rank >= o.pipeline * o.data_parallel) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": world_rank ", o.world_rank,
                                                   " outside a ", o.pipeline, " x ",
                                                   o.data_parallel, " job"));
  }
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": timeout must be > 0"));
  }
  const int device = o.world_rank % o.pipeline;
  const int replica = o.world_rank / o.pipeline;
  auto groups = std::make_unique<Groups>();
  absl::Status s = Guarded(absl::StrCat(name, " rendezvous"), [&]() -> absl::Status {
    auto make = [&](const std::string& group, int rank, int size) {
      auto prefixed =
          c10::make_intrusive<c10d::PrefixStore>(absl::StrCat(o.key_prefix, "/", group), store);
      return make_backend(prefixed, rank, size);
    };
    groups->world = make("world", o.world_rank, o.pipeline * o.data_parallel);
    groups->pipeline = make(absl::StrCat("pipe", replica), device, o.pipeline);
    groups->data = make(absl::StrCat("data", device), replica, o.data_parallel);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return std::unique_ptr<ProcessGroupCommunicator>(
      new ProcessGroupCommunicator(o, name, stream_ordered, std::move(groups)));
}

ProcessGroupCommunicator::ProcessGroupCommunicator(const ProcessGroupOptions& o, std::string name,
                                                   bool stream_ordered,
                                                   std::unique_ptr<Groups> groups)
    : o_(o), name_(std::move(name)), stream_ordered_(stream_ordered), groups_(std::move(groups)) {}

ProcessGroupCommunicator::~ProcessGroupCommunicator() = default;

absl::Status ProcessGroupCommunicator::CheckPeer(const at::Tensor& t, int peer, int tag) const {
  if (peer < 0 || peer >= o_.pipeline || peer == device()) {
    return absl::InvalidArgumentError(absl::StrCat("peer ", peer, " is not another device of a ",
                                                   o_.pipeline, "-device pipeline (this is ",
                                                   device(), ")"));
  }
  if (tag < 0) return absl::InvalidArgumentError("negative tag");
  if (!t.defined() || !t.is_contiguous()) {
    return absl::InvalidArgumentError("tensor must be defined and contiguous");
  }
  return absl::OkStatus();
}

std::unique_ptr<Work> ProcessGroupCommunicator::PointToPoint(bool send, const at::Tensor& t,
                                                             int peer, int tag) {
  absl::Status s = CheckPeer(t, peer, tag);
  if (!s.ok()) return std::make_unique<DoneWork>(s);
  const std::string op =
      absl::StrCat(send ? "send to" : "recv from", " device ", peer, " tag ", tag);
  std::unique_ptr<Work> work;
  s = Guarded(op, [&]() -> absl::Status {
    std::vector<at::Tensor> buf{t};
    c10::intrusive_ptr<c10d::Work> w =
        send ? groups_->pipeline->send(buf, peer, tag) : groups_->pipeline->recv(buf, peer, tag);
    absl::Status tracked = Track(w);
    if (!tracked.ok()) return tracked;
    work = std::make_unique<BackendWork>(std::move(w), op, stream_ordered_);
    return absl::OkStatus();
  });
  if (!s.ok()) return std::make_unique<DoneWork>(s);
  return work;
}

std::unique_ptr<Work> ProcessGroupCommunicator::Send(const at::Tensor& t, int peer, int tag) {
  return PointToPoint(/*send=*/true, t, peer, tag);
}

std::unique_ptr<Work> ProcessGroupCommunicator::Recv(at::Tensor& t, int peer, int tag) {
  return PointToPoint(/*send=*/false, t, peer, tag);
}

absl::Status ProcessGroupCommunicator::AllReduceSum(std::vector<at::Tensor>& tensors, Group group) {
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) {
      return absl::UnavailableError(absl::StrCat(name_, ": aborted (the attempt was stopped)"));
    }
  }
  // c10d's multi-tensor allreduce would also sum the inputs with each other
  // (they are meant as per-device replicas), so each dtype is flattened into
  // one buffer instead: one collective per dtype, in a fixed order.
  std::map<at::ScalarType, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) {
      return absl::InvalidArgumentError("AllReduceSum: undefined tensor");
    }
    by_dtype[tensors[i].scalar_type()].push_back(i);
  }
  c10d::Backend& pg = groups_->Get(group);
  // A stream-ordered wait returns at once; the copy-back below runs on the
  // same stream, after the reduction.
  const absl::Duration timeout = stream_ordered_ ? absl::InfiniteDuration() : o_.timeout;
  for (const auto& entry : by_dtype) {
    const std::vector<size_t>& indices = entry.second;
    const std::string op = absl::StrCat("all-reduce of ", indices.size(), " tensors (",
                                        c10::toString(entry.first), ")");
    absl::Status s = Guarded(op, [&]() -> absl::Status {
      const bool direct = indices.size() == 1 && tensors[indices[0]].is_contiguous();
      std::vector<at::Tensor> buf(1);
      if (direct) {
        buf[0] = tensors[indices[0]];
      } else {
        std::vector<at::Tensor> flat;
        flat.reserve(indices.size());
        for (size_t i : indices) flat.push_back(tensors[i].reshape({-1}));
        buf[0] = at::cat(flat);
      }
      auto work = pg.allreduce(buf);
      absl::Status w = WaitWork(*work, timeout, op);
      if (!w.ok() || direct) return w;
      int64_t offset = 0;
      for (size_t i : indices) {
        const int64_t n = tensors[i].numel();
        tensors[i].copy_(buf[0].narrow(0, offset, n).view(tensors[i].sizes()));
        offset += n;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ProcessGroupCommunicator::Track(const c10::intrusive_ptr<c10d::Work>& work) {
  absl::MutexLock lock(&mu_);
  if (aborted_) {
    try {
      work->abort();
    } catch (...) {
    }
    return absl::UnavailableError(absl::StrCat(name_, ": aborted (the attempt was stopped)"));
  }
  in_flight_.erase(std::remove_if(in_flight_.begin(), in_flight_.end(),
                                  [](const c10::intrusive_ptr<c10d::Work>& w) {
                                    try {
                                      return w->isCompleted();
                                    } catch (...) {
                                      return true;
                                    }
                                  }),
                   in_flight_.end());
  in_flight_.push_back(work);
  return absl::OkStatus();
}

void ProcessGroupCommunicator::Abort() {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return;
    aborted_ = true;
    works.swap(in_flight_);
  }
  // A blocked Wait on one of these returns at once with an error.
  for (auto& w : works) {
    try {
      w->abort();
    } catch (...) {
    }
  }
  for (Group g : {Group::kPipeline, Group::kData, Group::kWorld}) {
    try {
      groups_->Get(g).abort();
    } catch (...) {
    }
  }
}

absl::Status ProcessGroupCommunicator::Barrier(Group group) {
  return Guarded("barrier", [&]() -> absl::Status {
    auto work = groups_->Get(group).barrier();
    return WaitWork(*work, o_.timeout, "barrier");
  });
}

}  // namespace chronos::worker
