#include "coordinator/worker_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/handler_guard.h"

namespace chronos::coordinator {
namespace {

constexpr int kMaxCheckKeys = 4096;

absl::Status RequireWorkerId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("worker_id is required");
  return absl::OkStatus();
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("the coordinator is shutting down; reconnect and attach again");
}

}  // namespace

grpc::Status WorkerServiceImpl::Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    if (shutting_down_) return ShuttingDown();
    absl::StatusOr<WorkerRegistry::Registration> reg =
        workers_->Register(req->info(), req->previous_worker_id());
    if (!reg.ok()) return reg.status();
    jobs_->OnWorkerRegistered(*reg);
    resp->set_worker_id(reg->worker_id);
    resp->set_heartbeat_interval_ms(
        static_cast<int32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    absl::Status s = RequireWorkerId(req->worker_id());
    if (!s.ok()) return s;
    resp->set_known(workers_->Heartbeat(req->worker_id()));
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::Attach(grpc::ServerContext* ctx, const v1::AttachRequest* req,
                                       grpc::ServerWriter<v1::WorkerCommand>* writer) {
  return Guarded(*ctx, [&]() -> absl::Status {
    if (shutting_down_) return ShuttingDown();
    absl::Status s = RequireWorkerId(req->worker_id());
    if (!s.ok()) return s;
    absl::StatusOr<std::shared_ptr<CommandQueue>> outbox = workers_->Attach(req->worker_id());
    if (!outbox.ok()) return outbox.status();
    // Queue the worker's current assignment (if any) and admit jobs that
    // waited for it, then tell the client it is attached: the initial
    // metadata is the worker's readiness signal.
    jobs_->OnWorkerAttached(req->worker_id());
    writer->SendInitialMetadata();
    absl::Status result = absl::OkStatus();
    while (true) {
      v1::WorkerCommand command;
      const CommandQueue::PopResult r = (*outbox)->Pop(options_.poll_interval, &command);
      if (r == CommandQueue::PopResult::kCommand) {
        if (!writer->Write(command)) {
          result = absl::CancelledError("the worker went away");
          break;
        }
        continue;
      }
      if (r == CommandQueue::PopResult::kClosed) {
        const std::optional<v1::WorkerState> state = workers_->StateOf(req->worker_id());
        if (shutting_down_) {
          result = ShuttingDown();
        } else if (state == v1::WORKER_STATE_DEAD) {
          result = absl::FailedPreconditionError(
              "this worker was declared dead; Register again with "
              "previous_worker_id");
        } else {
          result = absl::AbortedError("a newer Attach stream of this worker replaced this one");
        }
        break;
      }
      if (ctx->IsCancelled()) {
        result = absl::CancelledError("the worker went away");
        break;
      }
      if (shutting_down_) {
        result = ShuttingDown();
        break;
      }
    }
    workers_->Detach(req->worker_id(), outbox->get());
    return result;
  });
}

grpc::Status WorkerServiceImpl::ReportProgress(grpc::ServerContext* ctx,
                                               const v1::ProgressReport* req,
                                               v1::ProgressAck* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    absl::Status s = RequireWorkerId(req->worker_id());
    if (!s.ok()) return s;
    return Into(jobs_->ReportProgress(*req), resp);
  });
}

grpc::Status WorkerServiceImpl::ReportFault(grpc::ServerContext* ctx, const v1::FaultReport* req,
                                            v1::FaultAck* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    absl::Status s = RequireWorkerId(req->worker_id());
    if (!s.ok()) return s;
    return jobs_->ReportFault(*req);
  });
}

grpc::Status WorkerServiceImpl::StoreSet(grpc::ServerContext* ctx, const v1::StoreSetRequest* req,
                                         v1::StoreSetResponse* resp) {
  return Guarded(*ctx, [&] { return kv_->Set(req->key(), req->value()); });
}

grpc::Status WorkerServiceImpl::StoreGet(grpc::ServerContext* ctx, const v1::StoreGetRequest* req,
                                         v1::StoreGetResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    if (req->timeout_ms() < 0) {
      return absl::InvalidArgumentError("timeout_ms must be >= 0");
    }
    absl::Duration timeout =
        std::min(absl::Milliseconds(req->timeout_ms()), options_.max_store_wait);
    // Never wait past the caller's own deadline.
    const absl::Time deadline = absl::FromChrono(ctx->deadline());
    timeout = std::min(timeout, std::max(absl::ZeroDuration(), deadline - absl::Now()));
    if (req->timeout_ms() == 0) {
      absl::StatusOr<bool> present = kv_->Check({req->key()});
      if (!present.ok()) return present.status();
      if (!*present) {
        return absl::NotFoundError(
            absl::StrCat("key '", req->key(), "' is not set (timeout_ms 0: no wait)"));
      }
    }
    absl::StatusOr<std::string> value = kv_->Get(
        req->key(), timeout, [&] { return ctx->IsCancelled() || shutting_down_.load(); },
        options_.poll_interval);
    if (!value.ok()) return value.status();
    resp->set_value(std::move(*value));
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::StoreAdd(grpc::ServerContext* ctx, const v1::StoreAddRequest* req,
                                         v1::StoreAddResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    absl::StatusOr<int64_t> value = kv_->Add(req->key(), req->delta());
    if (!value.ok()) return value.status();
    resp->set_value(*value);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::StoreCheck(grpc::ServerContext* ctx,
                                           const v1::StoreCheckRequest* req,
                                           v1::StoreCheckResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    if (req->keys_size() > kMaxCheckKeys) {
      return absl::InvalidArgumentError(
          absl::StrCat("at most ", kMaxCheckKeys, " keys per StoreCheck"));
    }
    std::vector<std::string> keys(req->keys().begin(), req->keys().end());
    absl::StatusOr<bool> ready = kv_->Check(keys);
    if (!ready.ok()) return ready.status();
    resp->set_ready(*ready);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::StoreDelete(grpc::ServerContext* ctx,
                                            const v1::StoreDeleteRequest* req,
                                            v1::StoreDeleteResponse* resp) {
  return Guarded(*ctx, [&]() -> absl::Status {
    absl::StatusOr<bool> deleted = kv_->Delete(req->key());
    if (!deleted.ok()) return deleted.status();
    resp->set_deleted(*deleted);
    return absl::OkStatus();
  });
}

}  // namespace chronos::coordinator
