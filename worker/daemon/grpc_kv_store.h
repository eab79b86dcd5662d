// KeyValueStore over the coordinator's Store* RPCs: the rendezvous store
// Gloo's process groups exchange their addresses through (wrapped into a
// c10d::Store by worker/comm/kv_c10d_store.h). Keys live under the
// attempt's store prefix, which the coordinator opens before it pushes the
// assignment and closes when the attempt ends.
//
// A coordinator restart during a rendezvous is survived: calls that fail
// with UNAVAILABLE are retried (with a short pause) until the caller's
// timeout, because the keys were written through to nothing durable and the
// rendezvous as a whole then fails with kDeadlineExceeded, which the
// coordinator treats as a transport fault.
//
// Thread-safe (Gloo calls from several threads at once).
#ifndef CHRONOS_WORKER_DAEMON_GRPC_KV_STORE_H_
#define CHRONOS_WORKER_DAEMON_GRPC_KV_STORE_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "chronos/v1/worker.grpc.pb.h"
#include "worker/comm/kv_store.h"

namespace chronos::worker {

class GrpcKeyValueStore : public KeyValueStore {
 public:
  // `stub` is borrowed and must outlive the store.
  GrpcKeyValueStore(v1::WorkerService::Stub* stub, std::string token,
                    absl::Duration rpc_timeout = absl::Seconds(10));

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<bool> Check(const std::vector<std::string>& keys) override;
  absl::StatusOr<bool> Delete(const std::string& key) override;

 private:
  v1::WorkerService::Stub* const stub_;
  const std::string token_;
  const absl::Duration rpc_timeout_;
};

}  // namespace chronos::worker

#endif  // CHRONOS_WORKER_DAEMON_GRPC_KV_STORE_H_
