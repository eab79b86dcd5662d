// The worker's side of chronos.v1.WorkerService: one method per RPC, each
// with the bearer token and a deadline, each returning absl::Status (the
// one conversion from grpc::Status happens here). No exception crosses it.
//
// Thread-safe: the heartbeat, progress and command threads share one
// client (gRPC stubs are thread-safe; the worker id is guarded).
#ifndef CHRONOS_WORKER_DAEMON_COORDINATOR_CLIENT_H_
#define CHRONOS_WORKER_DAEMON_COORDINATOR_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chronos/v1/worker.grpc.pb.h"

namespace chronos::worker {

class CoordinatorClient {
 public:
  CoordinatorClient(std::shared_ptr<grpc::Channel> channel, std::string token,
                    absl::Duration rpc_timeout = absl::Seconds(10));

  // Registers (again, with the previous id when there is one) and remembers
  // the id the coordinator assigned.
  absl::StatusOr<v1::RegisterResponse> Register(const v1::WorkerInfo& info);
  // False when the coordinator does not know this worker any more.
  absl::StatusOr<bool> Heartbeat(const std::string& job, int attempt, int64_t iteration);
  absl::StatusOr<v1::ProgressAck> ReportProgress(v1::ProgressReport report);
  absl::Status ReportFault(v1::FaultReport report);

  // Holds the Attach stream: calls `on_ready` once the coordinator has
  // accepted it (its initial metadata arrived), then `on_command` for every
  // command, until the stream ends (its status) or Cancel(). Blocks.
  absl::Status Attach(const std::function<void()>& on_ready,
                      const std::function<void(const v1::WorkerCommand&)>& on_command);
  // Ends a blocked Attach (from any thread); later Attach calls run again.
  void CancelAttach();

  std::string worker_id() const;
  v1::WorkerService::Stub* stub() { return stub_.get(); }
  const std::string& token() const { return token_; }

 private:
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) const;

  const std::unique_ptr<v1::WorkerService::Stub> stub_;
  const std::string token_;
  const absl::Duration rpc_timeout_;
  mutable absl::Mutex mu_;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* attach_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_COORDINATOR_CLIENT_H_
